import { readFileSync, unlinkSync } from 'node:fs';
import { writeFileAtomic } from './atomic.js';
import { isSameProcess, processStartTime } from '../host/proc.js';

export interface PidRecord {
  pid: number;
  startTime: string;
  /** Random per holder instance; lets a client tell two holders with the same PID apart. */
  token: string;
}

/** Writes `<pid> <starttime> <token>` for the current process. */
export function writePidfile(path: string, token: string, pid = process.pid): void {
  const startTime = processStartTime(pid);
  if (startTime === null) throw new Error(`process ${pid} is not running`);
  writeFileAtomic(path, `${pid} ${startTime} ${token}\n`);
}

export function readPidfile(path: string): PidRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const [pidText, startTime, token] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !startTime || !token) return undefined;
  return { pid, startTime, token };
}

/** A pidfile is trusted only when its PID is alive and still has the recorded start time. */
export function liveHolder(path: string): PidRecord | undefined {
  const record = readPidfile(path);
  return record && isSameProcess(record.pid, record.startTime) ? record : undefined;
}

/** Removes the pidfile only if it still names `token`, so a new holder's file is never removed. */
export function removePidfile(path: string, token?: string): void {
  if (token !== undefined && readPidfile(path)?.token !== token) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
