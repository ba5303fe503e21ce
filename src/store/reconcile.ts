import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import type { Store } from './layout.js';
import { readMemberState, writeMemberState, type MemberStateFile } from './members.js';
import { liveHolder, readPidfile } from './pidfile.js';
import { isSameProcess, processStartTime } from './proc.js';

function groupHasMembers(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[0] is state (field 3), fields[2] is pgrp (field 5)
      if (fields[2] === String(pgid) && fields[0] !== 'Z') return true;
    } catch {
      // raced with the process exiting
    }
  }
  return false;
}

/**
 * Kills the process group a member was started as, if it is still ours. A group whose leader is
 * alive with the recorded start time is ours; a group whose leader is gone but that still has
 * members is ours too, because Linux does not hand out a PID that is still in use as a group ID.
 */
export function killRecordedGroup(pid: number, startTime: string): boolean {
  const leaderStart = processStartTime(pid);
  const ours = leaderStart === null ? groupHasMembers(pid) : leaderStart === startTime;
  if (!ours) return false;
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

export interface ReconcileResult {
  /** Member processes that outlived their holder and were killed. */
  killed: number[];
  /** Pidfiles of dead holders that were removed. */
  stalePidfiles: number;
}

/**
 * Cleans up after a holder that died without cleaning up (SIGKILL, OOM, power cut): kills the
 * member process it left behind, removes its stale pidfile and marks the member stopped.
 * Does nothing while the recorded holder is alive.
 */
export function reconcileMember(store: Store, cluster: string, member: string): ReconcileResult {
  const result: ReconcileResult = { killed: [], stalePidfiles: 0 };
  const pidfile = store.pidfilePath(cluster, member);
  if (liveHolder(pidfile)) return result;
  if (readPidfile(pidfile)) {
    try {
      unlinkSync(pidfile);
      result.stalePidfiles++;
    } catch {
      // raced with another reconcile
    }
  }
  const state = readMemberState(store, cluster, member);
  if (!state) return result;
  const holderAlive = state.holder ? isSameProcess(state.holder.pid, state.holder.startTime) : false;
  if (holderAlive) return result;
  if (state.pid !== null && state.processStartTime && killRecordedGroup(state.pid, state.processStartTime)) {
    result.killed.push(state.pid);
  }
  if (state.state !== 'stopped' && state.state !== 'error') {
    writeMemberState(store, cluster, {
      ...state,
      state: 'stopped',
      running: false,
      pid: null,
      error: undefined,
      since: new Date().toISOString(),
    } satisfies MemberStateFile);
  } else if (state.pid !== null) {
    writeMemberState(store, cluster, { ...state, pid: null, running: false });
  }
  return result;
}
