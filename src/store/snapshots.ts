import { lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isSameProcess } from '../host/proc.js';
import { FleetboxError } from '../protocol/errors.js';
import { readJson } from './atomic.js';
import type { Store } from './layout.js';
import { MemberConfigSchema } from './member-config.js';
import { isValidName } from './names.js';

/**
 * snapshots/<name>/manifest.json: a cluster saved whole by `fleetbox snapshot` (DESIGN §3). Each
 * member's folder (named after the member it was) holds what its backend saved (RAM, devices,
 * disk, and the backend's own record of what restoring needs). The manifest is written last and
 * the folder appears by rename: a snapshot is complete or absent.
 */
export const SnapshotManifestSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  /** The cluster it was taken of. */
  cluster: z.string(),
  createdAt: z.string(),
  /** The cluster network it had; a fork gets the same subnet and addresses in its own namespace. */
  network: z.object({ subnet: z.string(), prefix: z.number().int(), gateway: z.string().nullable() }),
  members: z.array(
    z.object({
      /** The member it was, e.g. web-2; a fork's member is <fork>-2. */
      name: z.string(),
      ip: z.string(),
      config: MemberConfigSchema,
    }),
  ),
  /** Bytes on disk (state files and disks as stored, holes not counted). */
  bytes: z.number().int(),
  /** How long the members were paused while they were saved. */
  pausedMs: z.number(),
});
export type SnapshotManifest = z.infer<typeof SnapshotManifestSchema>;

/** Folders of snapshots being made; a crash leaves one behind, which the next snapshot removes. */
export const PARTIAL_PREFIX = '.partial-';

export function readSnapshot(store: Store, name: string): SnapshotManifest | undefined {
  const dir = store.snapshotDir(name);
  try {
    if (lstatSync(dir).isSymbolicLink()) throw new FleetboxError('state_corrupt', `${dir} is a symbolic link; fleetbox does not follow links in its store: remove it`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return readJson(join(dir, 'manifest.json'), SnapshotManifestSchema);
}

/** The snapshot `name`, or a one-line error that says how to see the ones there are. */
export function requireSnapshot(store: Store, name: string): SnapshotManifest {
  const manifest = readSnapshot(store, name);
  if (!manifest) throw new FleetboxError('not_found', `no snapshot named ${name}; see 'fleetbox snapshot ls'`);
  return manifest;
}

export interface SnapshotListing {
  name: string;
  manifest?: SnapshotManifest;
  /** Why it cannot be read (a damaged manifest): listed so that `snapshot rm` can clear it. */
  problem?: string;
}

/** Every snapshot, by name; partial ones (being made, or left by a crash) are not listed. */
export function listSnapshots(store: Store): SnapshotListing[] {
  let entries: string[];
  try {
    entries = readdirSync(store.snapshotsDir);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => isValidName(entry))
    .sort()
    .map((name) => {
      try {
        const manifest = readSnapshot(store, name);
        return manifest ? { name, manifest } : { name, problem: 'no manifest' };
      } catch (error) {
        return { name, problem: (error as Error).message.split('\n')[0] ?? 'unreadable' };
      }
    });
}

/** Bytes a folder's files take on disk (a sparse disk counts what it holds). */
export function bytesOnDisk(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesOnDisk(path);
    else if (entry.isFile()) total += statSync(path).blocks * 512;
  }
  return total;
}

/** A partial folder's name: the snapshot's, and the process making it (PID and start time). */
export function partialName(name: string, pid: number, startTime: string): string {
  return `${PARTIAL_PREFIX}${name}.${pid}.${startTime}`;
}

/** Removes partial snapshot folders whose maker is gone (a crashed or killed `snapshot`). */
export function removeAbandonedPartials(store: Store): void {
  let entries: string[];
  try {
    entries = readdirSync(store.snapshotsDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(PARTIAL_PREFIX)) continue;
    const [, pid, startTime] = /\.(\d+)\.(\d+)$/.exec(entry) ?? [];
    if (pid && startTime && isSameProcess(Number(pid), startTime)) continue;
    rmSync(join(store.snapshotsDir, entry), { recursive: true, force: true });
  }
}
