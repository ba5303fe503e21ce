import { FleetboxError } from '../protocol/errors.js';
import { StatusReplySchema } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { liveHolder } from '../store/pidfile.js';
import { request } from './client.js';

/**
 * A live holder answers `status` in about a millisecond; one that has not within this is
 * stopped or wedged. Requests that do real work (stop, addmember) ask `status` first with this
 * budget, so a silent holder is reported at once instead of after the whole work budget.
 */
export const HOLDER_ANSWER_MS = 3_000;

/** The one error for a holder that is alive but does not answer, with what to do about it. */
export function unresponsiveHolder(store: Store, ref: MemberRef, cause?: unknown): FleetboxError {
  const pid = liveHolder(store.pidfilePath(ref.cluster, ref.name))?.pid;
  const who = pid !== undefined ? `the holder of ${ref.name} (pid ${pid})` : `the holder of ${ref.name}`;
  const resume = pid !== undefined ? `'kill -CONT ${pid}' if it was paused, or ` : '';
  return new FleetboxError(
    'unresponsive',
    `${who} is alive but not answering (stopped, wedged or out of file descriptors); nothing was done: ${resume}'fleetbox rm ${ref.name} --yes' ends its processes`,
    { cause },
  );
}

/** Resolves when the member's holder answers `status`; throws `unresponsive` when it is alive but silent. */
export async function expectAnswer(store: Store, ref: MemberRef): Promise<void> {
  try {
    await request(store.memberSocketPath(ref.name), { cmd: 'status' }, StatusReplySchema, { timeoutMs: HOLDER_ANSWER_MS });
  } catch (error) {
    if (error instanceof FleetboxError && error.code === 'unresponsive') throw unresponsiveHolder(store, ref, error);
    throw error;
  }
}
