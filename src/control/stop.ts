import { pollUntil } from '../host/poll.js';
import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { isActiveState } from '../protocol/health-levels.js';
import { StopReplySchema, StopRequestSchema, type MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { listMembers, readMemberState, type MemberRef } from '../store/members.js';
import { liveHolder, type PidRecord } from '../store/pidfile.js';
import { isSameProcess } from '../host/proc.js';
import { reconcileMember, reconcileNetwork } from '../store/reconcile.js';
import { request } from './client.js';
import { getStatus } from './status.js';
import { expectAnswer, HOLDER_ANSWER_MS, unresponsiveHolder } from './unresponsive.js';

export interface StopOptions {
  /** Graceful budget per member before the holder escalates. */
  timeoutMs?: number;
}

/** The holder's own rule for a stop budget: checked here from the wire schema so both ends agree. */
const StopTimeoutSchema = StopRequestSchema.shape.timeoutMs.unwrap();
/** The longest graceful stop budget a holder accepts. */
export const MAX_STOP_TIMEOUT_MS = StopTimeoutSchema.maxValue ?? Number.MAX_SAFE_INTEGER;

/** True when a holder would accept `timeoutMs` as a stop budget (whole ms, 1 … MAX_STOP_TIMEOUT_MS). */
export function isStopTimeout(timeoutMs: number): boolean {
  return StopTimeoutSchema.safeParse(timeoutMs).success;
}

/** Refused before any holder is asked: a holder would answer with the schema's raw text instead. */
function checkTimeout(options: StopOptions): void {
  if (options.timeoutMs === undefined || isStopTimeout(options.timeoutMs)) return;
  throw new FleetboxError('usage', `a stop timeout is a whole number of milliseconds from 1 to ${MAX_STOP_TIMEOUT_MS}, not ${options.timeoutMs}`);
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
  checkTimeout(options);
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

/**
 * Stops many members concurrently; every member is tried even if some fail. It takes no lock:
 * for callers that already hold the cluster lock (rm); everyone else uses stopMembersLocked.
 */
export async function stopMembers(store: Store, refs: MemberRef[], options: StopOptions = {}) {
  checkTimeout(options);
  const results = await Promise.allSettled(refs.map((ref) => stopMember(store, ref, options)));
  return results.map((result, i) => ({ ref: refs[i] as MemberRef, result }));
}

const HOLDER_EXIT_MS = 15_000;

/** A holder process, known by PID and start time (which tell it from a later process with its PID). */
type HolderProcess = Pick<PidRecord, 'pid' | 'startTime'>;

/** A holder that holds no active member of `cluster` any more: it is shutting down on its own. */
function isLeaving(store: Store, cluster: string, holder: HolderProcess): boolean {
  return !listMembers(store, cluster).some((ref) => {
    const record = liveHolder(store.pidfilePath(cluster, ref.name));
    if (record?.pid !== holder.pid || record.startTime !== holder.startTime) return false;
    const state = readMemberState(store, cluster, ref.name)?.state;
    return state !== undefined && isActiveState(state);
  });
}

async function waitExited(holders: HolderProcess[], timeoutMs: number): Promise<void> {
  await pollUntil(() => (holders.some((h) => isSameProcess(h.pid, h.startTime)) ? undefined : true), timeoutMs);
}

/**
 * The live holders of `refs` (one entry per holder), read before they are asked to stop: those
 * their pidfiles name, and those their state.json names: a holder on its way out has removed the
 * pidfile but may still be closing its network.
 */
export function holdersOf(store: Store, refs: MemberRef[]): HolderProcess[] {
  const holders = new Map<number, HolderProcess>();
  for (const ref of refs) {
    const holder = liveHolder(store.pidfilePath(ref.cluster, ref.name));
    if (holder) holders.set(holder.pid, holder);
    const recorded = readMemberState(store, ref.cluster, ref.name)?.holder;
    if (recorded && isSameProcess(recorded.pid, recorded.startTime)) holders.set(recorded.pid, recorded);
  }
  return [...holders.values()];
}

/**
 * Waits (bounded) until those of `holders` left with no active member of `cluster` have exited:
 * a holder writes its last records while it exits, so neither an `up` nor a delete may follow
 * before it is gone.
 */
export async function awaitLeavingHolders(store: Store, cluster: string, holders: HolderProcess[]): Promise<void> {
  await waitExited(holders.filter((h) => isLeaving(store, cluster, h)), HOLDER_EXIT_MS);
}

/**
 * stopMembers under each cluster's lock, so a stop never interleaves with an `up` or `rm` of the
 * same cluster (README: up/down/rm are serialised). A holder left with no active member exits on
 * its own; the lock is kept until it has, because an `up` that found it still alive would ask a
 * holder that is closing its sockets to take a member on, and fail with "did not answer".
 */
export async function stopMembersLocked(store: Store, refs: MemberRef[], options: StopOptions = {}) {
  checkTimeout(options);
  const byCluster = new Map<string, MemberRef[]>();
  for (const ref of refs) byCluster.set(ref.cluster, [...(byCluster.get(ref.cluster) ?? []), ref]);
  const stopped = await Promise.all(
    [...byCluster].map(([cluster, members]) =>
      withLock(store.clusterLockPath(cluster), async () => {
        const holders = holdersOf(store, members);
        const results = await stopMembers(store, members, options);
        await awaitLeavingHolders(store, cluster, holders);
        return results;
      }),
    ),
  );
  // In the order the members were asked for, as stopMembers gives them.
  const results = stopped.flat();
  return refs.flatMap((ref) => results.filter((entry) => entry.ref === ref));
}
