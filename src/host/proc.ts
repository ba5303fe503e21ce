import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * The start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null
 * when there is no such process. Together with the PID it names one process for good: PIDs are
 * reused, start times of a reused PID differ.
 */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  if (rest[0] === 'Z' || rest[0] === 'X') return null;
  return rest[19] ?? null;
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
