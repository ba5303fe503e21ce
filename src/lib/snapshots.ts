import { forksOf, removeSnapshot as removeStored } from '../control/snapshot.js';
import { Store } from '../store/layout.js';
import { listSnapshots as listStored } from '../store/snapshots.js';
import type { SnapshotInfo } from './cluster.js';

/** A snapshot as listed: what `cluster.snapshot()` saved, when, and the clusters forked from it. */
export interface SnapshotListing extends Partial<SnapshotInfo> {
  name: string;
  createdAt?: string;
  forks: string[];
  /** Why it cannot be read (a damaged manifest); `removeSnapshot` still clears it. */
  problem?: string;
}

/** The snapshots of the store. */
export function listSnapshots(options: { home?: string } = {}): SnapshotListing[] {
  const store = new Store(options.home).ensure();
  return listStored(store).map(({ name, manifest, problem }) => ({
    name,
    ...(manifest && {
      cluster: manifest.cluster,
      members: manifest.members.map((m) => m.name),
      bytes: manifest.bytes,
      pausedMs: manifest.pausedMs,
      createdAt: manifest.createdAt,
    }),
    forks: forksOf(store, name),
    ...(problem !== undefined && { problem }),
  }));
}

/** Deletes a snapshot; refused while clusters forked from it exist, unless `force`. */
export function removeSnapshot(name: string, options: { home?: string; force?: boolean } = {}): void {
  removeStored(new Store(options.home).ensure(), name, { force: options.force ?? false });
}
