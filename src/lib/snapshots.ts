import { removeSnapshot as removeStored, snapshotSummaries, type SnapshotSummary } from '../control/snapshot.js';
import { Store } from '../store/layout.js';

/** A snapshot as listed: what `cluster.snapshot()` saved, when, and the clusters forked from it. */
export type SnapshotListing = SnapshotSummary;

/** The snapshots of the store. */
export function listSnapshots(options: { home?: string } = {}): SnapshotListing[] {
  return snapshotSummaries(new Store(options.home).ensure());
}

/** Deletes a snapshot; refused while clusters forked from it exist, unless `force`. */
export function removeSnapshot(name: string, options: { home?: string; force?: boolean } = {}): void {
  removeStored(new Store(options.home).ensure(), name, { force: options.force ?? false });
}
