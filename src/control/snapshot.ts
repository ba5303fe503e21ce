import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import type { z } from 'zod';
import { join } from 'node:path';
import { processStartTime } from '../host/proc.js';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { SnapshotReplySchema } from '../protocol/schemas.js';
import { readJson, writeJsonAtomic } from '../store/atomic.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { listClusters, listMembers, readMemberConfig } from '../store/members.js';
import { validateName } from '../store/names.js';
import { NetworkRecordSchema } from '../store/network-record.js';
import { listSnapshots, partialName, readSnapshot, removeAbandonedPartials, requireSnapshot, type SnapshotManifest } from '../store/snapshots.js';
import { request } from './client.js';

/**
 * The longest the holder may take to save one member (backend/qemu/saved-member.ts): 5 min of
 * migration, 1 min for the file to land, 5 min of disk copy, and the connects around them.
 */
const SAVE_BUDGET_MS = 11 * 60_000 + 30_000;

/**
 * `fleetbox snapshot <cluster> NAME`: saves every member of a running cluster (RAM, devices,
 * disks) as snapshot NAME, from which `up --from NAME` starts forks. Under the cluster lock, so
 * no `up`/`down`/`rm` changes the cluster meanwhile; the holder pauses all members for the save
 * (one moment of the whole cluster) and resumes them. The snapshot appears by rename with its
 * manifest, complete, or not at all (a crash leaves a partial folder the next snapshot removes).
 */
export async function takeSnapshot(store: Store, cluster: string, name: string, options: { onSaving?: () => void } = {}): Promise<SnapshotManifest> {
  validateName(cluster, 'cluster name');
  validateName(name, 'snapshot name');
  store.ensure();
  mkdirSync(store.snapshotsDir, { recursive: true, mode: 0o700 });
  const taken = () => new FleetboxError('usage', `a snapshot named ${name} exists; pick another name or remove it first: fleetbox snapshot rm ${name}`);
  // Any folder of that name, a damaged one too: found now, not after the cluster was saved.
  if (existsSync(store.snapshotDir(name))) throw taken();
  removeAbandonedPartials(store);
  return withLock(store.clusterLockPath(cluster), async () => {
    const refs = listMembers(store, cluster);
    if (refs.length === 0) throw new FleetboxError('not_found', `no cluster named ${cluster}; see 'fleetbox ls'`);
    const configs = refs.map((ref) => {
      const config = readMemberConfig(store, cluster, ref.name);
      if (!config) throw new FleetboxError('state_corrupt', `${ref.name} has no readable config; 'fleetbox rm ${ref.name} --yes' or fix it first`);
      return config;
    });
    const network = readJson(store.networkPath(cluster), NetworkRecordSchema);
    if (!network) throw new FleetboxError('not_running', `cluster ${cluster} is not running; start it first: fleetbox up ${cluster}`);
    const folder = partialName(name, process.pid, processStartTime(process.pid) ?? '0');
    const partial = join(store.snapshotsDir, folder);
    mkdirSync(partial, { mode: 0o700 });
    try {
      options.onSaving?.();
      // Through any member the holder serves (a stopped one has no socket); the holder itself
      // refuses a cluster with a stopped member. Its budget: each member's save, one after another.
      const body = { cmd: 'snapshot', folder };
      const budget = { timeoutMs: refs.length * SAVE_BUDGET_MS + 60_000, startWithinMs: 10_000 };
      let reply: z.infer<typeof SnapshotReplySchema> | undefined;
      for (const ref of refs) {
        try {
          reply = await request(store.memberSocketPath(ref.name), body, SnapshotReplySchema, budget);
          break;
        } catch (error) {
          if (!isFleetboxError(error, 'unreachable') || ref === refs.at(-1)) {
            if (isFleetboxError(error, 'unreachable')) {
              throw new FleetboxError('not_running', `cluster ${cluster} is not running (no holder answers); start it first: fleetbox up ${cluster}`, { cause: error });
            }
            throw error;
          }
        }
      }
      if (!reply) throw new FleetboxError('not_running', `cluster ${cluster} is not running; start it first: fleetbox up ${cluster}`);
      // The holder saves VMs only, which live on a bridge network; anything else is a bug.
      if (network.kind !== 'bridge') throw new FleetboxError('internal', `cluster ${cluster} has a ${network.kind} network, yet its holder saved it`);
      const saved = new Map(reply.snapshot.members.map((m) => [m.name, m.bytes]));
      const missing = configs.find((config) => !saved.has(config.name));
      if (missing) throw new FleetboxError('internal', `the holder did not save ${missing.name}`);
      const manifest: SnapshotManifest = {
        version: 1,
        name,
        cluster,
        createdAt: new Date().toISOString(),
        network: { subnet: network.subnet, prefix: network.prefix, gateway: network.gateway },
        members: configs.map((config) => ({ name: config.name, ip: network.addresses[config.name] ?? '', config })),
        bytes: [...saved.values()].reduce((a, b) => a + b, 0),
        pausedMs: reply.snapshot.pausedMs,
      };
      const noAddress = manifest.members.find((m) => m.ip === '');
      if (noAddress) throw new FleetboxError('state_corrupt', `${noAddress.name} has no address in ${cluster}'s network record`);
      writeJsonAtomic(join(partial, 'manifest.json'), manifest);
      crashPoint('client-mid-snapshot');
      try {
        renameSync(partial, store.snapshotDir(name));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw taken();
        throw error;
      }
      return manifest;
    } catch (error) {
      rmSync(partial, { recursive: true, force: true });
      throw error;
    }
  });
}

/** A snapshot as `snapshot ls` and the library list it. */
export interface SnapshotSummary {
  name: string;
  cluster?: string;
  members?: string[];
  /** Bytes on disk. */
  bytes?: number;
  createdAt?: string;
  /** How long the members stood paused for the save. */
  pausedMs?: number;
  /** Clusters forked from it (they restore it at each start). */
  forks: string[];
  /** Why it cannot be read (a damaged folder); `snapshot rm` still clears it. */
  problem?: string;
}

/** Every snapshot of the store with its forks. */
export function snapshotSummaries(store: Store): SnapshotSummary[] {
  return listSnapshots(store).map(({ name, manifest, problem }) => ({
    name,
    ...(manifest && {
      cluster: manifest.cluster,
      members: manifest.members.map((m) => m.name),
      bytes: manifest.bytes,
      createdAt: manifest.createdAt,
      pausedMs: manifest.pausedMs,
    }),
    forks: forksOf(store, name),
    ...(problem !== undefined && { problem }),
  }));
}

/** Clusters with a member that starts from snapshot `name` (its forks). */
export function forksOf(store: Store, name: string): string[] {
  return listClusters(store).filter((cluster) =>
    listMembers(store, cluster).some((ref) => {
      try {
        return readMemberConfig(store, cluster, ref.name)?.restore?.snapshot === name;
      } catch {
        return false;
      }
    }),
  );
}

/**
 * Removes snapshot `name` (its folder, whole). A fork restores it at every start, so while forks
 * exist it is refused unless `force`: they could then no longer start again.
 */
export function removeSnapshot(store: Store, name: string, options: { force: boolean } = { force: false }): void {
  validateName(name, 'snapshot name');
  const listed = listSnapshots(store).find((s) => s.name === name);
  if (!listed) throw new FleetboxError('not_found', `no snapshot named ${name}; see 'fleetbox snapshot ls'`);
  const forks = forksOf(store, name);
  if (forks.length > 0 && !options.force) {
    const which = forks.length === 1 ? `cluster ${forks.join('')} was` : `clusters ${forks.join(', ')} were`;
    throw new FleetboxError('usage', `${which} forked from ${name} and restore${forks.length === 1 ? 's' : ''} it at each start; remove ${forks.length === 1 ? 'it' : 'them'} first ('fleetbox rm ${forks.join(' ')} --yes') or give --force`);
  }
  rmSync(store.snapshotDir(name), { recursive: true, force: true });
}

/**
 * Where the network of a fork must put its members when a holder makes it anew (the first `up
 * --from`, and any later `up` after the whole cluster stopped): the subnet and addresses of the
 * snapshot, which its saved guests still have. Undefined for members that are not a fork's, or
 * when the snapshot is gone (their start then fails, saying so).
 */
export function forkNetwork(store: Store, cluster: string): { subnet: string; addresses: Record<string, string> } | undefined {
  // Every member of the fork, not only those starting now: one started later joins this network.
  const configs = listMembers(store, cluster).map((ref) => {
    try {
      return readMemberConfig(store, cluster, ref.name);
    } catch {
      return undefined; // a damaged config fails its own member's start, not the others'
    }
  });
  const snapshot = configs.find((config) => config?.restore)?.restore?.snapshot;
  if (snapshot === undefined) return undefined;
  const manifest = readSnapshot(store, snapshot);
  if (!manifest) return undefined;
  const saved = new Map(manifest.members.map((m) => [m.name, m.ip]));
  const addresses: Record<string, string> = {};
  for (const config of configs) {
    const ip = config?.restore?.snapshot === snapshot ? saved.get(config.restore.member) : undefined;
    if (config && ip) addresses[config.name] = ip;
  }
  return { subnet: manifest.network.subnet, addresses };
}

/** The member configs of a fork `cluster` of snapshot `name`, and the addresses its members get. */
export function forkPlan(store: Store, name: string, cluster: string): { members: { name: string; from: string; ip: string; config: SnapshotManifest['members'][number]['config'] }[]; subnet: string } {
  const manifest = requireSnapshot(store, name);
  const members = manifest.members.map((member) => {
    const suffix = member.name.slice(manifest.cluster.length);
    return { name: validateName(`${cluster}${suffix}`, 'member name'), from: member.name, ip: member.ip, config: member.config };
  });
  return { members, subnet: manifest.network.subnet };
}
