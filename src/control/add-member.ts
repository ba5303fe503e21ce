import { AddMemberReplySchema, type MemberStatus } from '../protocol/schemas.js';
import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { listMembers } from '../store/members.js';
import { DEFAULT_BOOT_TIMEOUT_MS, DEFAULT_PREPARE_TIMEOUT_MS } from '../store/member-config.js';
import { liveHolder } from '../store/pidfile.js';
import { clusterOf } from '../store/names.js';
import { request } from './client.js';
import { expectAnswer, HOLDER_ANSWER_MS } from './unresponsive.js';

/** A member of `cluster` whose holder is alive and answers, if any. */
export function liveSibling(store: Store, cluster: string, except?: string): string | undefined {
  for (const ref of listMembers(store, cluster)) {
    if (ref.name === except) continue;
    if (liveHolder(store.pidfilePath(cluster, ref.name))) return ref.name;
  }
  return undefined;
}

export interface AddBudget {
  bootTimeoutMs?: number;
  prepareTimeoutMs?: number;
}

/**
 * Re-joins (or adds) `name` to its live cluster by asking a running sibling's holder; resolves
 * when the member runs. The holder boots it on the cluster's existing network.
 */
export async function addMember(store: Store, name: string, budget: AddBudget = {}): Promise<MemberStatus> {
  // The holder enforces the boot budget (from the member's config) and reports a failure itself;
  // this deadline only covers a holder that never answers, so it is the whole budget the call has.
  const timeoutMs = (budget.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS) + (budget.prepareTimeoutMs ?? DEFAULT_PREPARE_TIMEOUT_MS);
  const cluster = clusterOf(name);
  const sibling = liveSibling(store, cluster, name) ?? liveSibling(store, cluster);
  if (!sibling) throw new FleetboxError('not_running', `cluster ${cluster} has no live holder to join; 'fleetbox up ${name}' starts one`);
  try {
    await expectAnswer(store, { cluster, name: sibling });
    const reply = await request(store.memberSocketPath(sibling), { cmd: 'addmember', name }, AddMemberReplySchema, {
      timeoutMs,
      startWithinMs: HOLDER_ANSWER_MS,
    });
    return reply.status;
  } catch (error) {
    if (isFleetboxError(error, 'unreachable')) {
      throw new FleetboxError('not_running', `the holder of cluster ${cluster} did not answer; retry 'fleetbox up ${name}'`, { cause: error });
    }
    throw error;
  }
}
