import type { MemberView } from '../control/status.js';
import type { Store } from '../store/layout.js';
import { listMembers } from '../store/listing.js';
import { probeStatus } from './probe.js';
import { HolderCache, readConfigSummary, readLiveHolder } from './scan.js';

/**
 * `fleetbox ls` when every member's holder is alive and answers: the views straight from the
 * holders, without loading zod, the reconcile code or the client (a third of the command's time,
 * on the path of every listing). Undefined when any member has no live holder or does not
 * answer at once: that listing needs the careful path (reconcile first, then each member's
 * status with the disk as fallback), and gets it. What it returns is what that path would.
 */
export async function listQuickly(store: Store, timeoutMs = 500): Promise<MemberView[] | undefined> {
  const refs = listMembers(store);
  const holders = new HolderCache();
  const pids = refs.map((ref) => readLiveHolder(store, ref, holders)?.pid);
  if (pids.some((pid) => pid === undefined)) return undefined;
  const probes = await Promise.all(refs.map((ref) => probeStatus(store.memberSocketPath(ref.name), timeoutMs)));
  const views: MemberView[] = [];
  for (const [i, ref] of refs.entries()) {
    const probe = probes[i];
    if (!probe?.ok || probe.status.name !== ref.name) return undefined;
    const config = readConfigSummary(store, ref);
    views.push({
      ...probe.status,
      cluster: ref.cluster,
      backend: config?.backend ?? 'unknown',
      createdAt: config?.createdAt ?? null,
      source: 'holder',
      holderPid: pids[i] ?? null,
    });
  }
  return views;
}
