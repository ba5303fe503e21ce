import { rmSync } from 'node:fs';
import { crashPoint } from '../protocol/crash-point.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { listMembers, type MemberRef } from '../store/members.js';
import { liveHolder } from '../store/pidfile.js';
import { isProcessAlive } from '../store/proc.js';
import { reconcileCluster, removeStaleSocket } from '../store/reconcile.js';
import { stopMembers } from './stop.js';

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isProcessAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export interface RemoveResult {
  removed: string[];
  failed: { name: string; message: string }[];
}

/**
 * Stops and deletes members (config, state, disk, logs of the member). A cluster left with no
 * members loses its directory and network record too, once its holder has exited.
 */
export async function removeMembers(store: Store, refs: MemberRef[]): Promise<RemoveResult> {
  const byCluster = new Map<string, MemberRef[]>();
  for (const ref of refs) byCluster.set(ref.cluster, [...(byCluster.get(ref.cluster) ?? []), ref]);
  const result: RemoveResult = { removed: [], failed: [] };
  for (const [cluster, members] of byCluster) {
    await withLock(store.clusterLockPath(cluster), async () => {
      const holders = members
        .map((ref) => liveHolder(store.pidfilePath(cluster, ref.name))?.pid)
        .filter((pid): pid is number => pid !== undefined);
      const stops = await stopMembers(store, members);
      crashPoint('client-mid-rm');
      for (const { ref, result: stop } of stops) {
        if (stop.status === 'rejected') {
          result.failed.push({ name: ref.name, message: String((stop.reason as Error).message ?? stop.reason) });
          continue;
        }
        rmSync(store.memberDir(cluster, ref.name), { recursive: true, force: true });
        // Stopped for good: a socket a crashed holder left for this member goes with it.
        removeStaleSocket(store.memberSocketPath(ref.name));
        result.removed.push(ref.name);
      }
      reconcileCluster(store, cluster);
      if (listMembers(store, cluster).length === 0) {
        // The holder writes its last records while it exits; delete the directory after that.
        await waitGone([...new Set(holders)], 15_000);
        rmSync(store.clusterDir(cluster), { recursive: true, force: true });
        rmSync(store.holderLogPath(cluster), { force: true });
      }
    });
  }
  return result;
}
