import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { MemberConfig } from '../store/member-config.js';
import type { NetworkRecord } from '../store/network-record.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  /** Whole-command budget; on expiry the command is killed and `exec_timeout` thrown. */
  timeoutMs?: number;
  /** Bytes written to the command's standard input. */
  input?: string;
}

export interface ExecTarget {
  store: Store;
  config: MemberConfig;
  ip: string;
  network: NetworkRecord | undefined;
}

export interface MemberCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** The SSH module is loaded only for qemu members: process clusters never pay for it. */
const loadSsh = () => import('../backend/qemu/ssh.js');

/**
 * The host command that runs `shellCommand` "on" a member. A process member has no machine of
 * its own, so it runs on the host with the member's identity in the environment; a qemu
 * member's runs in the guest over SSH through the cluster's network namespace. Without a
 * command, a qemu member gets an interactive login shell.
 */
export async function memberCommand(target: ExecTarget, shellCommand: string | undefined, options: { tty: boolean }): Promise<MemberCommand> {
  const env = {
    FLEETBOX_NAME: target.config.name,
    FLEETBOX_CLUSTER: target.config.cluster,
    FLEETBOX_IP: target.ip,
    FLEETBOX_PORT: String(target.config.port),
  };
  if (target.config.backend === 'process') {
    if (shellCommand === undefined) {
      throw new FleetboxError('usage', `${target.config.name} is a process member and has no shell; give a command after --`);
    }
    return { file: '/bin/sh', args: ['-c', shellCommand], env };
  }
  if (!target.network?.namespace) {
    throw new FleetboxError('not_running', `${target.config.name} has no cluster network; is it running?`);
  }
  const ssh = await loadSsh();
  const remote = shellCommand === undefined ? [] : [shellCommand];
  const { file, args } = ssh.sshCommand(target.store, { ip: target.ip, namespace: target.network.namespace }, remote, {
    ...options,
    member: target.config.name,
  });
  return { file, args, env };
}

/** Runs a shell command on a member and collects its output: `{ stdout, stderr, exitCode }`. */
export async function execOn(target: ExecTarget, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { execa } = await import('execa');
  const { file, args, env } = await memberCommand(target, command, { tty: false });
  // Its own process group, so a timeout ends the command and everything it started: killing
  // only the shell would leave its children holding the output pipes open.
  const child = execa(file, args, {
    reject: false,
    detached: true,
    input: options.input ?? '',
    stripFinalNewline: false,
    env,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, timeoutMs);
  const result = await child.finally(() => clearTimeout(timer));
  if (timedOut) {
    throw new FleetboxError('exec_timeout', `command on ${target.config.name} did not finish within ${timeoutMs} ms: ${command.slice(0, 80)}`);
  }
  if (result.exitCode === undefined) {
    throw new FleetboxError('unreachable', `could not run a command on ${target.config.name}: ${result.message}`);
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode };
}
