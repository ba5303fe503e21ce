import { setTimeout as sleep } from 'node:timers/promises';
import { FleetboxError } from '../../protocol/errors.js';
import { GUEST_ENV } from '../../image/guest-init.js';
import type { GuestAgent } from './agent.js';

export interface AgentExecOptions {
  /** Whole-command budget; on expiry the command and everything it started are killed in the guest. */
  timeoutMs: number;
  /** The command's standard input (qemu-ga takes it whole, up front). */
  input?: Buffer;
}

export interface AgentExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  /** qemu-ga keeps at most 16 MiB of each stream; true when it cut one. */
  truncated: boolean;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}


/**
 * Poll delays (ms) for guest-exec-status: a short command is done in a few milliseconds even
 * under TCG, so the first polls come every millisecond; a long one is asked less and less often.
 */
function* pollDelays(): Generator<number> {
  for (let i = 0; i < 10; i++) yield 1;
  let delay = 2;
  for (;;) {
    yield delay;
    delay = Math.min(50, Math.ceil(delay * 1.5));
  }
}

/**
 * Ends a guest process and every process under it. The command runs in qemu-ga's process group,
 * so the tree is walked: each process is stopped before its children are listed (it cannot fork
 * new ones after that), then killed.
 */
const TREE_KILLER = 't() { kill -STOP $1 2>/dev/null; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do t $c; done; kill -KILL $1 2>/dev/null; }';
const killTree = (pid: number) => `${TREE_KILLER}; t ${pid}`;

/**
 * Ends request `id` of an exec port's server (image/exec-server.c) and all it started: the PID
 * the server wrote to `<dir>.id`, once that file names request `id` and while the PID is the
 * server's child. Until then the file is empty (the server is still reading the request) or
 * still names the request before (the server is about to clear it): the script waits, bounded.
 * A kill that comes late finds another request there, or none, and ends nothing.
 */
export const killRequestScript = (dir: string, id: number, serverPid: number) =>
  `${TREE_KILLER}; n=0; until read -r k i p _ < ${dir}.id && [ "$k $i" = "E ${id}" ]; do ` +
  `[ $n -ge 100 ] && exit 0; sleep 0.05; n=$((n + 1)); done; ` +
  `pp=; while read -r f v; do [ "$f" = PPid: ] && pp=$v; done < /proc/$p/status; [ "$pp" = ${serverPid} ] && t $p`;

/** Runs `script` through the agent to end processes (a timeout's clean-up) and waits (bounded) until it has run; its failure is the caller's to ignore. */
export async function agentKill(agent: GuestAgent, script: string): Promise<void> {
  const { pid } = await agent.call<{ pid: number }>('guest-exec', { path: '/bin/sh', arg: ['-c', script], env: GUEST_ENV });
  await waitExited(agent, pid);
}

/** Asks for the status of agent command `pid` until it has exited, for 3 s at most (a timeout's clean-up and the collection after it stay well inside the 10 s the client allows past its budget): once reported, qemu-ga forgets it. */
async function waitExited(agent: GuestAgent, pid: number, budgetMs = 3_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (const delay of pollDelays()) {
    await sleep(delay);
    const status = await agent.call<ExecStatus>('guest-exec-status', { pid });
    if (status.exited || Date.now() >= deadline) return;
  }
}

/** Runs `command` with /bin/sh -c in the guest through its agent and collects its output. */
export async function agentExec(agent: GuestAgent, member: string, command: string, options: AgentExecOptions): Promise<AgentExecResult> {
  const deadline = Date.now() + options.timeoutMs;
  const timedOut = () => new FleetboxError('exec_timeout', `command on ${member} did not finish within ${options.timeoutMs} ms: ${command.slice(0, 80)}`);
  // An agent call that times out drops the channel (and every other call on it), so calls get
  // budgets of their own: a busy guest under emulation may take a second to answer one. Only a
  // guest that answers nothing for that long (frozen, agent gone) ends the command early.
  const call = async <T>(name: string, args: Record<string, unknown>): Promise<T> => {
    try {
      return await agent.call<T>(name, args, Math.min(10_000, Math.max(5_000, deadline - Date.now())));
    } catch (error) {
      if (Date.now() >= deadline) throw timedOut();
      throw error;
    }
  };
  const started = await call<{ pid: number }>('guest-exec', {
    path: '/bin/sh',
    arg: ['-c', command],
    env: GUEST_ENV,
    'capture-output': true,
    ...(options.input && options.input.length > 0 && { 'input-data': options.input.toString('base64') }),
  });
  const pid = started.pid;
  for (const delay of pollDelays()) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(delay, left));
    const status = await call<ExecStatus>('guest-exec-status', { pid });
    if (!status.exited) continue;
    const exitCode = status.exitcode ?? (status.signal !== undefined ? 128 + status.signal : 255);
    return {
      stdout: Buffer.from(status['out-data'] ?? '', 'base64'),
      stderr: Buffer.from(status['err-data'] ?? '', 'base64'),
      exitCode,
      truncated: status['out-truncated'] === true || status['err-truncated'] === true,
    };
  }
  // Out of time: end the command in the guest, then collect its status so qemu-ga forgets it
  // (it keeps a finished command, and up to 16 MiB of each stream, until its status is asked).
  try {
    await agentKill(agent, killTree(pid));
    await waitExited(agent, pid);
  } catch {
    // the timeout is what the caller needs to hear about
  }
  throw timedOut();
}
