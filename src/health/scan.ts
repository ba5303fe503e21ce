import { readFileSync } from 'node:fs';
import { readProcStat } from '../host/proc.js';
import type { Store } from '../store/layout.js';
import type { MemberConfig } from '../store/member-config.js';
import type { MemberRef, MemberStateFile } from '../store/members.js';
import { readPidfile, type PidRecord } from '../store/pidfile.js';

/**
 * Reads what `status` needs from the store without loading zod: this is the hot path of
 * `fleetbox status` (zod alone costs ~60 ms of start-up, over a third of the 150 ms budget).
 * Listing and name resolution are the store's and control's own (both zod-free); files that do
 * not look right read as missing, and the rollup reports the member from what is left.
 */

export { listClusters as scanClusters, listMembers as scanMembers } from '../store/listing.js';
export { resolveTargets as resolveNames } from '../control/targets.js';

function readObject(path: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export type ConfigSummary = Pick<MemberConfig, 'backend' | 'createdAt'> & { port: number | undefined };

export function readConfigSummary(store: Store, ref: MemberRef): ConfigSummary | undefined {
  const raw = readObject(store.configPath(ref.cluster, ref.name));
  if (!raw || typeof raw.backend !== 'string' || typeof raw.createdAt !== 'string') return undefined;
  return {
    backend: raw.backend as MemberConfig['backend'],
    createdAt: raw.createdAt,
    port: typeof raw.port === 'number' ? raw.port : undefined,
  };
}

export function readStateFile(store: Store, ref: MemberRef): MemberStateFile | undefined {
  const raw = readObject(store.statePath(ref.cluster, ref.name));
  if (!raw || typeof raw.state !== 'string' || typeof raw.since !== 'string') return undefined;
  return raw as unknown as MemberStateFile;
}

/**
 * /proc/<pid>/stat of holders, read once per snapshot: fifty members of one cluster share one
 * holder, so its liveness is one read, not fifty.
 */
export class HolderCache {
  private readonly stats = new Map<number, { state: string; startTime: string } | null>();

  private stat(pid: number): { state: string; startTime: string } | null {
    let cached = this.stats.get(pid);
    if (cached === undefined) {
      const stat = readProcStat(pid);
      cached = stat && stat.state !== 'Z' && stat.state !== 'X' ? { state: stat.state, startTime: stat.startTime } : null;
      this.stats.set(pid, cached);
    }
    return cached;
  }

  /** Start time of a live process (same rule as store/proc.ts: zombies are dead), else null. */
  startTime(pid: number): string | null {
    return this.stat(pid)?.startTime ?? null;
  }

  /** Scheduler state: R, S, D, T (stopped, e.g. SIGSTOP), t (traced) …, null when gone. */
  state(pid: number): string | null {
    return this.stat(pid)?.state ?? null;
  }
}

/** The member's holder per its pidfile, trusted only if that PID is alive with its start time. */
export function readLiveHolder(store: Store, ref: MemberRef, holders: HolderCache = new HolderCache()): PidRecord | undefined {
  const record = readPidfile(store.pidfilePath(ref.cluster, ref.name));
  return record && holders.startTime(record.pid) === record.startTime ? record : undefined;
}
