import { isFleetboxError } from '../protocol/errors.js';
import { ForwardReplySchema } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { request } from './client.js';
import { HOLDER_ANSWER_MS, unresponsiveHolder } from './unresponsive.js';

/** Asks the member's holder for a loopback port piped to `port` of the member (lives until it stops). */
export async function forwardPort(store: Store, ref: MemberRef, port: number): Promise<{ host: string; port: number; memberPort: number }> {
  try {
    const reply = await request(store.memberSocketPath(ref.name), { cmd: 'forward', port }, ForwardReplySchema, {
      timeoutMs: 10_000,
      startWithinMs: HOLDER_ANSWER_MS,
    });
    return reply.forward;
  } catch (error) {
    if (isFleetboxError(error, 'unresponsive')) throw unresponsiveHolder(store, ref, error);
    throw error;
  }
}
