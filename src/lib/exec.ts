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

/**
 * Runs a shell command "on" a member. A process member has no machine of its own, so its
 * commands run on the host with the member's identity in the environment; a qemu member's
 * run in the guest over SSH through the cluster's network namespace.
 */
export async function execOn(target: ExecTarget, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { execa } = await import('execa');
  let file: string;
  let args: string[];
  if (target.config.backend === 'process') {
    file = '/bin/sh';
    args = ['-c', command];
  } else {
    const ssh = await loadSsh();
    ({ file, args } = ssh.sshCommand(target.store, guestNetwork(target), ['sh', '-c', command], { tty: false }));
  }
  // Its own process group, so a timeout ends the command and everything it started: killing
  // only the shell would leave its children holding the output pipes open.
  const child = execa(file, args, {
    reject: false,
    detached: true,
    input: options.input ?? '',
    stripFinalNewline: false,
    env: {
      FLEETBOX_NAME: target.config.name,
      FLEETBOX_CLUSTER: target.config.cluster,
      FLEETBOX_IP: target.ip,
      FLEETBOX_PORT: String(target.config.port),
    },
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

interface SshModule {
  sshCommand(
    store: Store,
    network: { ip: string; namespace: string | null },
    remote: string[],
    options: { tty: boolean },
  ): { file: string; args: string[] };
}

async function loadSsh(): Promise<SshModule> {
  const specifier: string = '../backend/qemu/ssh.js';
  return (await import(specifier)) as SshModule;
}

function guestNetwork(target: ExecTarget) {
  if (!target.network?.namespace) {
    throw new FleetboxError('not_running', `${target.config.name} has no cluster network record; is it running?`);
  }
  return { ip: target.ip, namespace: target.network.namespace };
}
