import { readProcStat, type ProcStat } from '../../host/proc.js';
import type { CheckOutcome, ImmediateChecker, MemberCheckContext } from './types.js';

/** What /proc/<pid>/stat says of the member's process. */
function verdict(pid: number, startTime: string, parsed: ProcStat | undefined): CheckOutcome {
  if (!parsed) return { status: 'fail', detail: `process ${pid} is gone` };
  const { state } = parsed;
  if (parsed.startTime !== startTime) return { status: 'fail', detail: `process ${pid} is gone (PID reused by another process)` };
  if (state === 'Z' || state === 'X') return { status: 'fail', detail: `process ${pid} has exited (zombie)` };
  if (state === 'T' || state === 't') return { status: 'fail', detail: `process ${pid} is stopped (SIGSTOP or a debugger)` };
  return { status: 'pass', detail: `process ${pid} alive (state ${state})` };
}

/**
 * The member's own process exists, is the very process that was started (PID and /proc start
 * time), and is not stopped or a zombie. Read synchronously: /proc/<pid>/stat is made by the
 * kernel in microseconds and never waits on a disk, while an asynchronous read costs four
 * thread-pool round trips (a quarter of an idle holder's CPU with 100 members); and so it needs
 * no deadline either.
 */
export const processAliveChecker: ImmediateChecker<MemberCheckContext> = {
  name: 'process-alive',
  checkNow({ member }) {
    if (!member.process) return { status: 'skip', detail: `no process (${member.state})` };
    const { pid, startTime } = member.process;
    return verdict(pid, startTime, readProcStat(pid));
  },
};
