import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { StatusReplySchema, type MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import { readMemberConfig, readMemberState, type MemberRef } from '../store/members.js';
import { liveHolder } from '../store/pidfile.js';
import { request } from './client.js';

export interface MemberView extends MemberStatus {
  cluster: string;
  backend: string;
  /** `holder`: a live holder answered; `disk`: no holder answered, read from state.json. */
  source: 'holder' | 'disk';
  /** PID of the holder process that owns the member, when one is alive. */
  holderPid: number | null;
  /** The holder is alive but did not answer: the state is its last word on disk, maybe stale. */
  unresponsive?: true;
  createdAt: string | null;
}

/**
 * A member's status: a live holder's answer beats any file. Without one, the last state on disk
 * is reported, except that nothing without a holder can be running: that reads as stopped.
 */
export async function getStatus(store: Store, ref: MemberRef, timeoutMs = 2_000): Promise<MemberView> {
  let config;
  let corrupt: string | undefined;
  try {
    config = readMemberConfig(store, ref.cluster, ref.name);
    if (!config) throw new FleetboxError('not_found', `no member named ${ref.name}; 'fleetbox ls' lists them`);
  } catch (error) {
    // One bad config.json must not hide every other member, nor stop rm from clearing it.
    if (!isFleetboxError(error, 'state_corrupt')) throw error;
    corrupt = `${error.message}; 'fleetbox rm ${ref.name} --yes' removes the member`;
  }
  const base = { cluster: ref.cluster, backend: config?.backend ?? 'unknown', createdAt: config?.createdAt ?? null };
  // The socket is asked even without a pidfile: the pidfile is written after the socket listens.
  try {
    const reply = await request(store.memberSocketPath(ref.name), { cmd: 'status' }, StatusReplySchema, { timeoutMs });
    const holder = liveHolder(store.pidfilePath(ref.cluster, ref.name));
    return { ...reply.status, ...base, source: 'holder', holderPid: holder?.pid ?? null };
  } catch (error) {
    // unknown_member: the holder let go of the member between accepting and answering (it is
    // stopping it or shutting down); the disk has the word then, as for a holder that is gone.
    // unresponsive: a live holder that said nothing in time; its last state on disk stands in.
    if (!(['unreachable', 'unresponsive', 'unknown_member'] as const).some((code) => isFleetboxError(error, code))) throw error;
  }
  if (corrupt !== undefined) return unreadable(ref, corrupt);
  // A live pidfile whose holder did not answer in time is busy or wedged, not dead: say so.
  const busyHolder = liveHolder(store.pidfilePath(ref.cluster, ref.name));
  const state = readMemberState(store, ref.cluster, ref.name);
  const settled = state && (state.state === 'stopped' || state.state === 'error');
  if (busyHolder && state) {
    // The holder lives but did not answer: its last written state is the best word there is.
    const { processStartTime: _start, holder: _holder, ...status } = state;
    return { ...status, ...base, source: 'disk', holderPid: busyHolder.pid, unresponsive: true };
  }
  return {
    name: ref.name,
    pid: null,
    running: false,
    ip: state?.ip ?? null,
    state: settled ? state.state : 'stopped',
    ...(settled && state.error !== undefined && { error: state.error }),
    since: state?.since ?? base.createdAt ?? new Date().toISOString(),
    ...base,
    source: 'disk',
    holderPid: null,
  };
}

/** A member whose config cannot be read: an error with what to do, so ls and status still list the rest. */
function unreadable(ref: MemberRef, why: string): MemberView {
  return {
    name: ref.name,
    pid: null,
    running: false,
    ip: null,
    state: 'error',
    error: why,
    since: new Date().toISOString(),
    cluster: ref.cluster,
    backend: 'unknown',
    source: 'disk',
    holderPid: null,
    createdAt: null,
  };
}
