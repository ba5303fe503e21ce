import { isFleetboxError } from '../protocol/errors.js';
import { StopReplySchema, type MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { reconcileMember, reconcileNetwork } from '../store/reconcile.js';
import { request } from './client.js';
import { getStatus } from './status.js';

export interface StopOptions {
  /** Graceful budget per member before the holder escalates. */
  timeoutMs?: number;
}

/**
 * Stops one member through its holder. With no live holder, whatever the dead holder left
 * (orphan process, pidfile) is cleaned up and the member reads as stopped.
 */
export async function stopMember(store: Store, ref: MemberRef, options: StopOptions = {}): Promise<MemberStatus> {
  const body = { cmd: 'stop', ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }) };
  try {
    const reply = await request(store.memberSocketPath(ref.name), body, StopReplySchema, {
      timeoutMs: (options.timeoutMs ?? 10_000) + 30_000,
    });
    return reply.status;
  } catch (error) {
    if (!isFleetboxError(error, 'unreachable') && !isFleetboxError(error, 'unknown_member')) throw error;
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
