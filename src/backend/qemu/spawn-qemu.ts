import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { findBinary } from '../../host/binaries.js';
import { FleetboxError } from '../../protocol/errors.js';
import { enteredCgroup } from '../../host/cgroup.js';
import { ORPHAN_GUARD, processStartTime } from '../../host/proc.js';
import type { ExitInfo, MemberHandle } from '../types.js';

export const QEMU_BINARY = 'qemu-system-x86_64';

/**
 * The full argv that starts QEMU: first `setpriv --pdeathsig KILL`, so the kernel kills the VM
 * when the process that started it dies, even by SIGKILL; then a private umask and the member's
 * cgroup (`cgroupPrefix`); then, for a member with a network, `ip netns exec` into the cluster's
 * namespace, where its tap lives. Each execs its successor and the death signal survives exec,
 * so it ends up set on QEMU itself (same PID throughout), as early as possible after the fork.
 */
export function launchArgv(qemuArgs: readonly string[], namespace: string | null, cgroupPrefix: readonly string[] = []): string[] {
  const qemu = findBinary(QEMU_BINARY);
  if (!qemu) throw new FleetboxError('missing_prerequisite', `${QEMU_BINARY} is not installed; run: fleetbox setup --yes`);
  const contained = containedArgv([]);
  const ipBinary = findBinary('ip');
  if (namespace && !ipBinary) throw new FleetboxError('missing_prerequisite', 'ip (iproute2) is not installed; run: fleetbox setup --yes');
  const inNamespace = namespace ? [ipBinary ?? 'ip', 'netns', 'exec', namespace] : [];
  return [...contained, ...cgroupPrefix, ...inNamespace, qemu, ...qemuArgs];
}

/**
 * `setpriv --pdeathsig KILL`, then a private umask (what the process creates, sockets and logs,
 * is 0700/0600 like the rest of the store), then `rest`: the death signal survives every exec,
 * so it is set on the final program (same PID) as early as possible after the fork.
 */
export function containedArgv(rest: readonly string[]): string[] {
  const setpriv = findBinary('setpriv');
  if (!setpriv) throw new FleetboxError('missing_prerequisite', 'setpriv (util-linux) is not installed; run: fleetbox setup --yes');
  return [setpriv, '--pdeathsig', 'KILL', '--', '/bin/sh', '-c', `${ORPHAN_GUARD} umask 077 && exec "$@"`, String(process.pid), ...rest];
}


/**
 * Starts QEMU as the leader of its own process group (reconcile kills the recorded group of a
 * dead holder's member) and, for a member, in the member's cgroup (reconcile finds that one even
 * when the holder died before recording the PID), with its output in `logPath`. Resolves once
 * the process exists.
 */
export async function spawnQemu(argv: readonly string[], logPath: string, cwd: string, cgroup?: string): Promise<MemberHandle> {
  return spawnContained(argv, logPath, cwd, cgroup);
}

/** spawnQemu for any program of a member (QEMU, its file server): same group, cgroup and log rules. */
export async function spawnContained(argv: readonly string[], logPath: string, cwd: string, cgroup?: string): Promise<MemberHandle> {
  const log = openSync(logPath, 'w', 0o600);
  try {
    const child = spawn(argv[0] ?? '', argv.slice(1), { cwd, detached: true, stdio: ['ignore', log, log] });
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? 0));
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(new FleetboxError('missing_prerequisite', `cannot start ${argv[0]}: ${error.code ?? error.message}; run: fleetbox setup --yes`, { cause: error })),
      );
    });
    if (cgroup) await enteredCgroup(cgroup, pid, exited);
    // The start time does not change across exec, so reading it now names QEMU for good. A
    // process already gone gets a start time no process has: nothing will ever be signalled,
    // and the holder learns of the exit through `exited` and asks diagnose() why.
    const startTime = processStartTime(pid) ?? 'exited';
    return { pid, startTime, exited, ...(cgroup && { cgroup }) };
  } finally {
    closeSync(log);
  }
}
