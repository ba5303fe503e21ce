import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat that fleetbox reads. */
export interface ProcStat {
  /** Field 2: the command name, without its parentheses. */
  comm: string;
  /** Field 3: R, S, D, T (stopped), t (traced), Z (zombie), X (dead) … */
  state: string;
  /** Field 5: the process group. */
  pgrp: string;
  /** Field 22: start time in clock ticks since boot. */
  startTime: string;
}

/** Parses a /proc/<pid>/stat line; undefined when it is not one. */
export function parseProcStat(text: string): ProcStat | undefined {
  // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  const [state, , pgrp] = rest;
  const startTime = rest[19];
  return state && pgrp && startTime ? { comm: text.slice(text.indexOf('(') + 1, close), state, pgrp, startTime } : undefined;
}

/** /proc/<pid>/stat of a process, or undefined when there is no such process. */
export function readProcStat(pid: number | string): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

const isDead = (stat: ProcStat) => stat.state === 'Z' || stat.state === 'X';

/**
 * The start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null
 * when there is no such process (a zombie counts as none). Together with the PID it names one
 * process for good: PIDs are reused, start times of a reused PID differ.
 */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const stat = readProcStat(pid);
  return stat && !isDead(stat) ? stat.startTime : null;
}

/** The live (not zombie) processes of process group `pgid`. */
export function processGroup(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries.filter((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    const stat = readProcStat(entry);
    return stat !== undefined && stat.pgrp === String(pgid) && !isDead(stat);
  }).map(Number);
}

export function isProcessAlive(pid: number): boolean {
  return processStartTime(pid) !== null;
}

/** True when `pid` is alive and is still the very process that had `startTime`. */
export function isSameProcess(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}

/** Sends a signal to a process we recorded ourselves, only if it is still that process. */
export function signalRecorded(pid: number, startTime: string, signal: NodeJS.Signals, group = false): boolean {
  if (!isSameProcess(pid, startTime)) return false;
  try {
    process.kill(group ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A child we spawned: ask it to exit (SIGTERM), insist after `graceMs` (SIGKILL), wait until it has. */
export async function terminateChild(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * For `setpriv --pdeathsig KILL -- sh -c '<guard> …' <starter pid> …`: a starter that died
 * between the fork and setpriv's prctl never sends the death signal, so the program would live
 * on orphaned; the shell finds another parent and gives up instead. From the prctl on, the death
 * signal covers the rest.
 */
export const ORPHAN_GUARD = '[ "$PPID" = "$0" ] || exit 125;';
