import { pollUntil } from '../host/poll.js';
import { existsSync } from 'node:fs';
import { crashPoint } from '../protocol/crash-point.js';
import { isFleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { destroyCgroupSync, memberCgroupPath } from '../host/cgroup.js';
import { listMembers, readMemberState, type MemberRef } from '../store/members.js';
import { removeInStore } from '../store/no-follow.js';
import { liveHolder } from '../store/pidfile.js';
import { isProcessAlive, signalRecorded } from '../host/proc.js';
import { killRecordedGroup, reconcileCluster, removeStaleSocket } from '../store/reconcile.js';
import { awaitLeavingHolders, holdersOf, stopMembers } from './stop.js';

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  return (await pollUntil(() => (pids.some(isProcessAlive) ? undefined : true), timeoutMs)) ?? false;
}

export interface RemoveResult {
  removed: string[];
  failed: { name: string; message: string }[];
  /** Holders that were alive but did not answer, ended by rm (with the members they held). */
  ended: { holderPid: number; members: string[] }[];
}

/**
 * rm of members whose holder is alive but silent: their own processes are ended by recorded PID
 * and start time, then the holder itself (it already had HOLDER_ANSWER_MS to answer), so nothing
 * is deleted while a process of it still runs, and nothing it queued can run when it resumes.
 */
async function endSilentHolders(store: Store, cluster: string, refs: MemberRef[]): Promise<RemoveResult['ended']> {
  const holders = new Map<number, { startTime: string; members: string[] }>();
  for (const ref of refs) {
    const state = readMemberState(store, cluster, ref.name);
    if (state?.pid != null && state.processStartTime) killRecordedGroup(state.pid, state.processStartTime);
    const holder = liveHolder(store.pidfilePath(cluster, ref.name));
    if (holder) {
      const entry = holders.get(holder.pid) ?? { startTime: holder.startTime, members: [] };
      entry.members.push(ref.name);
      holders.set(holder.pid, entry);
    }
  }
  for (const [pid, { startTime }] of holders) signalRecorded(pid, startTime, 'SIGKILL');
  await waitGone([...holders.keys()], 5_000);
  // Only now: the members' processes stay zombies in their cgroups until their (stopped) holder is
  // gone and they are reaped, and a populated cgroup cannot be removed.
  for (const ref of refs) {
    const cgroup = memberCgroupPath(store.home, ref.name);
    if (cgroup) destroyCgroupSync(cgroup);
  }
  return [...holders].map(([holderPid, { members }]) => ({ holderPid, members }));
}

/**
 * Stops and deletes members (config, state, disk, logs of the member). A cluster left with no
 * members loses its directory and network record too, once its holder has exited.
 */
export async function removeMembers(store: Store, refs: MemberRef[]): Promise<RemoveResult> {
  const byCluster = new Map<string, MemberRef[]>();
  for (const ref of refs) byCluster.set(ref.cluster, [...(byCluster.get(ref.cluster) ?? []), ref]);
  const result: RemoveResult = { removed: [], failed: [], ended: [] };
  for (const [cluster, members] of byCluster) {
    await withLock(store.clusterLockPath(cluster), async () => {
      const holderRecords = holdersOf(store, members);
      const holders = holderRecords.map((h) => h.pid);
      const stops = await stopMembers(store, members);
      crashPoint('client-mid-rm');
      const silent = stops.filter(({ result: stop }) => stop.status === 'rejected' && isFleetboxError(stop.reason, 'unresponsive'));
      if (silent.length > 0) result.ended.push(...(await endSilentHolders(store, cluster, silent.map((s) => s.ref))));
      // A holder left with nothing to hold writes its last records into the member directories
      // while it exits (a failed `up` returns before that); delete them only after it is gone.
      await awaitLeavingHolders(store, cluster, holderRecords);
      for (const { ref, result: stop } of stops) {
        if (stop.status === 'rejected' && !silent.some((s) => s.ref === ref)) {
          result.failed.push({ name: ref.name, message: String((stop.reason as Error).message ?? stop.reason) });
          continue;
        }
        removeInStore(store, store.memberDir(cluster, ref.name));
        // Stopped for good: a socket a crashed holder left for this member goes with it, and its
        // cgroup if a stop could not remove it in time (processes still exiting on a busy host).
        removeStaleSocket(store.memberSocketPath(ref.name));
        const cgroup = memberCgroupPath(store.home, ref.name);
        if (cgroup && existsSync(cgroup)) destroyCgroupSync(cgroup);
        result.removed.push(ref.name);
      }
      reconcileCluster(store, cluster);
      if (listMembers(store, cluster).length === 0) {
        // The holder writes its last records while it exits; delete the directory after that.
        await waitGone([...new Set(holders)], 15_000);
        removeInStore(store, store.clusterDir(cluster));
        removeInStore(store, store.holderLogPath(cluster));
        // A holder that was killed (or ended above) could not remove its control socket; with no
        // member left and its holders gone, nothing can be listening there any more.
        if (await waitGone([...new Set(holders)], 0)) removeStaleSocket(store.controlSocketPath(cluster));
      }
    });
  }
  return result;
}
