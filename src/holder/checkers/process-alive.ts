import { readFile } from 'node:fs/promises';
import { parseProcStat } from '../../host/proc.js';
import type { MemberChecker } from './types.js';

/**
 * The member's own process exists, is the very process that was started (PID and /proc start
 * time), and is not stopped or a zombie. Read asynchronously: the holder's event loop serves
 * status requests meanwhile.
 */
export const processAliveChecker: MemberChecker = {
  name: 'process-alive',
  async check({ member }) {
    if (!member.process) return { status: 'skip', detail: `no process (${member.state})` };
    const { pid, startTime } = member.process;
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return { status: 'fail', detail: `process ${pid} is gone` };
    }
    const parsed = parseProcStat(stat);
    const state = parsed?.state;
    if (parsed?.startTime !== startTime) return { status: 'fail', detail: `process ${pid} is gone (PID reused by another process)` };
    if (state === 'Z' || state === 'X') return { status: 'fail', detail: `process ${pid} has exited (zombie)` };
    if (state === 'T' || state === 't') return { status: 'fail', detail: `process ${pid} is stopped (SIGSTOP or a debugger)` };
    return { status: 'pass', detail: `process ${pid} alive (state ${state})` };
  },
};
