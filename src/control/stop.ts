import { isFleetboxError } from '../protocol/errors.js';
import { StopReplySchema, type MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { reconcileMember, reconcileNetwork } from '../store/reconcile.js';
import { request } from './client.js';
import { getStatus } from './status.js';
import { expectAnswer, HOLDER_ANSWER_MS, unresponsiveHolder } from './unresponsive.js';

export interface StopOptions {
  /** Graceful budget per member before the holder escalates. */
  timeoutMs?: number;
}

/** True for the answers that mean "no live holder has this member": the disk has the word then. */
function noHolder(error: unknown): boolean {
  return isFleetboxError(error, 'unreachable') || isFleetboxError(error, 'unknown_member');
}

/**
 * Stops one member through its holder. With no live holder, whatever the dead holder left
 * (orphan process, pidfile) is cleaned up and the member reads as stopped. A holder that is
 * alive but silent is an `unresponsive` error, never a success: a quick `status` first tells
 * wedged from busy, so no `stop` is left queued in a holder that nobody waits for.
 */
export async function stopMember(store: Store, ref: MemberRef, options: StopOptions = {}): Promise<MemberStatus> {
  const path = store.memberSocketPath(ref.name);
  try {
    await expectAnswer(store, ref);
    const body = { cmd: 'stop', ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) };
    const reply = await request(path, body, StopReplySchema, {
      timeoutMs: (options.timeoutMs ?? 10_000) + 30_000,
      startWithinMs: HOLDER_ANSWER_MS,
    });
    return reply.status;
  } catch (error) {
    if (isFleetboxError(error, 'unresponsive')) throw unresponsiveHolder(store, ref, error);
    if (!noHolder(error)) throw error;
  }
  reconcileMember(store, ref.cluster, ref.name);
  reconcileNetwork(store, ref.cluster);
  return getStatus(store, ref);
}

/** Stops many members concurrently; every member is tried even if some fail. */
export async function stopMembers(store: Store, refs: MemberRef[], options: StopOptions = {}) {
  const results = await Promise.allSettled(refs.map((ref) => stopMember(store, ref, options)));
  return results.map((result, i) => ({ ref: refs[i] as MemberRef, result }));
}
