import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { readHeartbeat } from '../store/heartbeat.js';
import { probeStatus } from './probe.js';
import { classifyMember, rollup, summariseCluster, type MemberObservation } from './rollup.js';
import { HolderCache, readConfigSummary, readLiveHolder, readStateFile, resolveNames, scanMembers } from './scan.js';
import type { ClusterHealth, FleetSnapshot, HeartbeatFile, MemberHealth, Warning } from '../protocol/health.js';

export const DEFAULT_MEMBER_TIMEOUT_MS = 2_000;

export interface CollectOptions {
  /** Member or cluster names; all members on this machine when empty. */
  names?: string[];
  /** Per-member answer deadline; a member that misses it becomes a warning row from disk. */
  timeoutMs?: number;
  graceMs?: number;
  issueLimit?: number;
}

/** The heartbeat, trusted only while the holder that wrote it is still the same live process. */
function liveHeartbeat(store: Store, cluster: string, holders: HolderCache): HeartbeatFile | undefined {
  const file = readHeartbeat(store, cluster);
  return file && holders.startTime(file.holder.pid) === file.holder.startTime ? file : undefined;
}

/**
 * Fans out to every member socket at once, each with its own deadline, and rolls the answers
 * (or the on-disk fallback for members that did not answer) up into one snapshot. The whole
 * call takes about as long as the slowest member's deadline, never the sum.
 */
export async function collectLocal(store: Store, options: CollectOptions = {}): Promise<FleetSnapshot> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_MEMBER_TIMEOUT_MS;
  const refs: MemberRef[] = options.names && options.names.length > 0 ? resolveNames(store, options.names) : scanMembers(store);
  const clusterNames = [...new Set(refs.map((r) => r.cluster))];
  // Every probe is on its way before the store is read: the holders answer while we read files.
  const pending = Promise.all(refs.map((ref) => probeStatus(store.memberSocketPath(ref.name), timeoutMs)));
  const holders = new HolderCache();
  const heartbeats = new Map(clusterNames.map((c) => [c, liveHeartbeat(store, c, holders)] as const));
  const local = refs.map((ref) => {
    const pidRecord = readLiveHolder(store, ref, holders);
    return { config: readConfigSummary(store, ref), pidRecord };
  });
  const probes = await pending;
  const now = Date.now();
  const warnings: Warning[] = [];
  const members: MemberHealth[] = refs.map((ref, i) => {
    const probe = probes[i] ?? { ok: false, reason: 'error', message: 'not probed', ms: 0 };
    const { config, pidRecord } = local[i] ?? { config: undefined, pidRecord: undefined };
    const file = heartbeats.get(ref.cluster);
    // A heartbeat speaks for this member only if it comes from the member's own holder.
    const beat = file && (pidRecord ? pidRecord.pid === file.holder.pid : probe.ok) ? file : undefined;
    const observation: MemberObservation = {
      ref,
      config,
      probe,
      // state.json only matters when the holder did not answer.
      disk: probe.ok ? undefined : readStateFile(store, ref),
      holder: pidRecord && { pid: pidRecord.pid, procState: holders.state(pidRecord.pid) },
      heartbeat: beat && { at: beat.heartbeat, staleAfterMs: beat.staleAfterMs },
      checks: beat?.members[ref.name]?.checks ?? [],
      timeoutMs,
    };
    if (!probe.ok && (probe.reason !== 'no_socket' || pidRecord)) {
      warnings.push({ subject: ref.name, message: `${ref.name} did not answer (${probe.message}); showing its last state on disk` });
    }
    return classifyMember(observation, { now, ...(options.graceMs !== undefined && { graceMs: options.graceMs }) });
  });
  const clusters: ClusterHealth[] = clusterNames.map((cluster) => {
    const file = heartbeats.get(cluster);
    const own = members.filter((m) => m.cluster === cluster);
    const holderPid = file?.holder.pid ?? own.find((m) => m.holderPid !== null)?.holderPid ?? null;
    const holder =
      holderPid === null
        ? null
        : {
            pid: holderPid,
            lastHeartbeat: file?.heartbeat ?? null,
            heartbeatAgeMs: file ? Math.max(0, now - Date.parse(file.heartbeat)) : null,
            staleAfterMs: file?.staleAfterMs ?? null,
          };
    return summariseCluster(cluster, own, holder, file?.checks ?? []);
  });
  return rollup({
    members,
    clusters,
    warnings,
    now,
    ...(options.issueLimit !== undefined && { issueLimit: options.issueLimit }),
  });
}
