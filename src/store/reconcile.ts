import { isActiveState } from '../protocol/health-levels.js';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { readJson, writeJsonAtomic } from './atomic.js';
import { NetworkRecordSchema } from './network-record.js';
import type { Store } from './layout.js';
import { listMembers, readMemberState, writeMemberState, type MemberStateFile } from './members.js';
import { liveHolder, readPidfile } from './pidfile.js';
import { destroyCgroupSync, memberCgroupPath } from '../host/cgroup.js';
import { writeFaults } from './faults-record.js';
import { isSameProcess, processGroup, processStartTime } from '../host/proc.js';

/**
 * Kills the process group a member was started as, if it is still ours. A group whose leader is
 * alive with the recorded start time is ours; a group whose leader is gone but that still has
 * members is ours too, because Linux does not hand out a PID that is still in use as a group ID.
 */
export function killRecordedGroup(pid: number, startTime: string): boolean {
  const leaderStart = processStartTime(pid);
  const ours = leaderStart === null ? processGroup(pid).length > 0 : leaderStart === startTime;
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
  const holderAlive = state?.holder ? isSameProcess(state.holder.pid, state.holder.startTime) : false;
  if (holderAlive) return result;
  if (state?.pid != null && state.processStartTime && killRecordedGroup(state.pid, state.processStartTime)) {
    result.killed.push(state.pid);
  }
  // What left the process group (setsid), and a member whose holder died before it could record
  // the PID, are still in the member's cgroup. Its path is derived from the store and the name,
  // never read from a file someone could have planted.
  const cgroup = memberCgroupPath(store.home, member);
  if (cgroup) result.killed.push(...destroyCgroupSync(cgroup).filter((pid) => pid !== state?.pid));
  if (!state) return result;
  // The dead run's QMP, SSH-sharing and file-server sockets answer nobody now. (A new holder of this member
  // writes its pidfile before anything creates these, so its live ones are never touched; the
  // member socket itself is left to the next listen or to rm, which hold the cluster lock.)
  for (const path of [store.qmpSocketPath(member), store.agentSocketPath(member), store.fsSocketPath(member)]) removeStaleSocket(path);
  if (isActiveState(state.state)) {
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

export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // not there
  }
}

function namespaceExists(namespace: string): boolean {
  return existsSync(`/run/netns/${namespace}`);
}

/**
 * A cluster network whose recorded owner (holder) is dead is torn down: its namespace deleted
 * (taps and bridge go with it) and verified gone. The record keeps its subnet and address book,
 * minus the owner, so members that come back get their old addresses. Returns what it did.
 */
export function reconcileNetwork(store: Store, cluster: string): 'none' | 'released' | 'failed' {
  let record;
  try {
    record = readJson(store.networkPath(cluster), NetworkRecordSchema);
  } catch {
    return 'none'; // a corrupt record is rebuilt by the next holder
  }
  if (!record?.owner) return 'none';
  if (isSameProcess(record.owner.pid, record.owner.startTime)) return 'none';
  // Its faults (bridge rules, paused VMs) went with its namespace and VMs: so goes their record.
  writeFaults(store, cluster, []);
  if (record.namespace && namespaceExists(record.namespace)) {
    try {
      execFileSync('ip', ['netns', 'delete', record.namespace], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // verified below
    }
    if (namespaceExists(record.namespace)) return 'failed';
  }
  writeJsonAtomic(store.networkPath(cluster), { ...record, owner: null });
  return 'released';
}

/** Everything a dead holder of `cluster` left behind: member processes, pidfiles, its network. */
export function reconcileCluster(store: Store, cluster: string): void {
  for (const member of listMembers(store, cluster)) reconcileMember(store, cluster, member.name);
  reconcileNetwork(store, cluster);
}
