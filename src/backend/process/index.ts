import { tailLines } from '../../host/tail.js';
import { closeSync, existsSync } from 'node:fs';
import { appendFile, open, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { openLoopbackNetwork } from '../../net/loopback.js';
import { FleetboxError } from '../../protocol/errors.js';
import { endCgroup, enterCgroup, enteredCgroup } from '../../host/cgroup.js';
import { openAppendNoFollow } from '../../store/no-follow.js';
import { findBinary } from '../../host/binaries.js';
import { ORPHAN_GUARD, processStartTime } from '../../host/proc.js';
import { memberOwnsListener } from './listener.js';
import { portCheck } from './port-check.js';
import type { Backend, BackendContext, BackendSettings, ExitInfo, MemberExecOptions, MemberExecResult, MemberHandle } from '../types.js';

/** The default member program (see member-server.pl), copied next to this file by the build. */
const SERVER_SCRIPT = fileURLToPath(new URL('./member-server.pl', import.meta.url));
const SETPRIV = '/usr/bin/setpriv';

function portAnswers(host: string, port: number, timeoutMs = 200): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** What a member's process, and every command run "on" it, finds in its environment. */
function memberEnv({ store, config, network }: BackendContext): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    FLEETBOX_HOME: store.home,
    FLEETBOX_NAME: config.name,
    FLEETBOX_CLUSTER: config.cluster,
    FLEETBOX_IP: network.ip,
    FLEETBOX_PORT: String(config.port),
  };
}

/** Signals the member's whole process group (what it started stays in it unless it used setsid). */
function signalMemberGroup(ctx: BackendContext, handle: MemberHandle, signal: NodeJS.Signals): void {
  try {
    process.kill(-handle.pid, signal);
  } catch (error) {
    throw new FleetboxError('not_running', `${ctx.config.name}'s process is gone (${(error as NodeJS.ErrnoException).code ?? 'unknown'})`);
  }
}

/**
 * A command "on" a process member runs on the host, beside the member, with its environment.
 * Its own process group, so a timeout ends the command and everything it started: killing only
 * the shell would leave its children holding the output pipes open.
 */
async function execBeside(ctx: BackendContext, command: string, options: MemberExecOptions): Promise<MemberExecResult> {
  const { execa } = await import('execa');
  const child = execa('/bin/sh', ['-c', command], {
    reject: false,
    detached: true,
    input: options.input ?? Buffer.alloc(0),
    encoding: 'buffer',
    stripFinalNewline: false,
    env: { ...process.env, ...memberEnv(ctx) },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, options.timeoutMs);
  const result = await child.finally(() => clearTimeout(timer));
  if (timedOut) {
    throw new FleetboxError('exec_timeout', `command on ${ctx.config.name} did not finish within ${options.timeoutMs} ms: ${command.slice(0, 80)}`);
  }
  if (result.exitCode === undefined) throw new FleetboxError('unreachable', `could not run a command on ${ctx.config.name}: ${result.message}`);
  return { stdout: Buffer.from(result.stdout), stderr: Buffer.from(result.stderr), exitCode: result.exitCode, truncated: false };
}

/**
 * Members are plain OS processes: the built-in TCP server or `sh -c <cmd>`, each on its own
 * loopback address, in its own process group (stop signals the whole group), started under
 * `setpriv --pdeathsig KILL` so a SIGKILLed holder takes its direct child with it.
 */
export function createProcessBackend(): Backend {
  return {
    kind: 'process',
    openNetwork: openLoopbackNetwork,
    async prepare(): Promise<void> {},

    async start(ctx: BackendContext): Promise<MemberHandle> {
      const { config, store } = ctx;
      const program = config.cmd ? ['/bin/sh', '-c', config.cmd] : [findBinary('perl') ?? 'perl', SERVER_SCRIPT];
      const { prefix, cgroup } = enterCgroup(store.home, config.name);
      const guarded = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', '/bin/sh', '-c', `${ORPHAN_GUARD} exec "$@"`, String(process.pid)] : [];
      const argv = [...guarded, ...prefix, ...program];
      if (!cgroup) ctx.log.warn('no_cgroup', { member: config.name, why: 'cgroup v2 not writable; members are contained by process group only' });
      const logPath = store.serialLogPath(config.cluster, config.name);
      const out = openAppendNoFollow(logPath);
      try {
        const child = spawn(argv[0] ?? '', argv.slice(1), {
          detached: true,
          stdio: ['ignore', out, out],
          env: memberEnv(ctx),
        });
        const exited = new Promise<ExitInfo>((resolve) => {
          child.once('exit', (code, signal) => resolve({ code, signal }));
          child.once('error', () => resolve({ code: null, signal: null }));
        });
        const pid = child.pid;
        if (pid === undefined) {
          throw new FleetboxError('boot_failed', `could not start ${argv[0]}`);
        }
        if (cgroup) await enteredCgroup(cgroup, pid, exited);
        return { pid, startTime: processStartTime(pid) ?? '0', exited, ...(cgroup && { cgroup }) };
      } finally {
        closeSync(out);
      }
    },

    async probe(ctx: BackendContext, handle: MemberHandle): Promise<boolean> {
      // Ownership first: it reads the kernel's shared listening table, where a connect per member
      // per probe would cost a hundred starting members thousands of connections a second.
      if (!memberOwnsListener(handle, ctx.network.ip, ctx.config.port)) return false;
      return portAnswers(ctx.network.ip, ctx.config.port);
    },

    async stop(ctx: BackendContext, handle: MemberHandle, timeoutMs: number): Promise<void> {
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          process.kill(-handle.pid, signal);
        } catch {
          // the group is already gone
        }
      };
      ctx.log.info('member_stop_signal', { member: ctx.config.name, signal: 'SIGTERM' });
      signalGroup('SIGTERM');
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
      if ((await Promise.race([handle.exited, timer])) === 'timeout') {
        ctx.log.warn('member_stop_escalate', { member: ctx.config.name, signal: 'SIGKILL', afterMs: timeoutMs });
        signalGroup('SIGKILL');
        await handle.exited;
      }
      // Whatever the leader left in its group goes too, and what left the group (setsid).
      signalGroup('SIGKILL');
      await endCgroup(ctx, handle);
    },

    diagnose(ctx: BackendContext): string {
      return tailLines(ctx.store.serialLogPath(ctx.config.cluster, ctx.config.name), 20).join('\n');
    },

    exec: execBeside,

    // A process member's files are the host's.
    async writeFile(_ctx, path, data, append) {
      await (append ? appendFile : writeFile)(path, data, { mode: 0o600 });
    },

    async readFile(_ctx, path, offset, count) {
      const file = await open(path, 'r');
      try {
        const data = Buffer.alloc(count);
        const { bytesRead } = await file.read(data, 0, count, offset);
        return { data: data.subarray(0, bytesRead), eof: bytesRead < count };
      } finally {
        await file.close();
      }
    },

    async pause(ctx, handle) {
      signalMemberGroup(ctx, handle, 'SIGSTOP');
    },

    async resume(ctx, handle) {
      signalMemberGroup(ctx, handle, 'SIGCONT');
    },

    shapeNetwork(ctx) {
      return Promise.reject(
        new FleetboxError('usage', `network faults need a cluster of VMs (--backend qemu): ${ctx.config.name} shares the host's network stack`),
      );
    },

    // Liveness is the holder's generic check; this one asks the member's own service.
    healthChecks: [portCheck],
  };
}

/** The registry's entry point (backend/index.ts); no setting applies to plain processes. */
export const createBackend = (_settings: BackendSettings): Backend => createProcessBackend();
