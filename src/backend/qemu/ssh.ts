import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { sshKeyPaths } from '../../image/ssh-key.js';
import { FleetboxError } from '../../protocol/errors.js';
import type { Store } from '../../store/layout.js';

/** Where a guest is: its address and the cluster's namespace (null: not on a bridge network). */
export interface GuestAddress {
  ip: string;
  namespace: string | null;
}

export interface GuestExecOptions {
  /** Whole-command budget; on expiry the command is killed and `exec_timeout` thrown. Default 60 s. */
  timeoutMs?: number;
  /** Bytes for the command's standard input. */
  input?: string | Uint8Array;
}

export interface GuestExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * The host command that runs `remoteArgs` in a guest (an interactive login shell when empty):
 * `ip netns exec <ns> ssh … root@<ip>` with the installation's own key. Only that key is
 * offered (no agent, no ~/.ssh/config, no user keys), and host keys are not checked: guests are
 * throw-away and reachable only inside the cluster's private namespace, where addresses are reused.
 */
/** The client options every fleetbox SSH connection uses: the installation's key only. */
export function sshOptions(store: Store): string[] {
  const { privateKey } = sshKeyPaths(store);
  if (!existsSync(privateKey)) {
    throw new FleetboxError('missing_prerequisite', `the fleetbox SSH key ${privateKey} is missing; run: fleetbox setup --yes`);
  }
  return [
    '-F', '/dev/null',
    '-i', privateKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
    '-o', 'BatchMode=yes',
  ];
}

export function sshCommand(
  store: Store,
  network: GuestAddress,
  remoteArgs: readonly string[],
  options: { tty: boolean; member?: string },
): { file: string; args: string[] } {
  if (!network.namespace) throw new FleetboxError('not_running', `no network namespace for ${network.ip}; is the member running?`);
  // Share the holder's connection when there is one (no key exchange); ssh falls back to a
  // connection of its own, inside the namespace, when the socket is missing or dead.
  const shared = options.member ? ['-S', store.sshMuxPath(options.member), '-o', 'ControlMaster=no'] : [];
  const args = [
    'netns', 'exec', network.namespace,
    'ssh',
    ...sshOptions(store),
    ...shared,
    options.tty ? '-t' : '-T',
    // `--` ends ssh's options: a remote command starting with '-' is not read as one.
    '--',
    `root@${network.ip}`,
    ...remoteArgs,
  ];
  return { file: 'ip', args };
}

/** Runs a shell command in a guest over SSH and collects its output. */
export async function execInGuest(store: Store, network: GuestAddress, command: string, options: GuestExecOptions = {}): Promise<GuestExecResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { file, args } = sshCommand(store, network, [command], { tty: false });
  const result = await execa(file, args, {
    reject: false,
    timeout: timeoutMs,
    forceKillAfterDelay: 1_000,
    stripFinalNewline: false,
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' }),
  });
  if (result.timedOut) {
    throw new FleetboxError('exec_timeout', `command on ${network.ip} did not finish within ${timeoutMs} ms: ${command.slice(0, 80)}`);
  }
  if (result.exitCode === undefined) {
    throw new FleetboxError('unreachable', `could not run ssh to ${network.ip}: ${result.message}`);
  }
  return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode };
}

function sshFailure(what: string, result: { exitCode?: number; stderr: unknown; timedOut: boolean }, timeoutMs: number): FleetboxError {
  if (result.timedOut) return new FleetboxError('exec_timeout', `${what} did not finish within ${timeoutMs} ms`);
  const said = String(result.stderr).trim().split('\n').pop() ?? '';
  return new FleetboxError(result.exitCode === 255 ? 'unreachable' : 'io', `${what} failed (exit ${result.exitCode}): ${said}`);
}

/**
 * Copies a host file into a guest. The guest has no sftp server and no scp binary, so the bytes
 * stream through `cat > path` on an SSH channel, which is binary-safe.
 */
export async function copyTo(store: Store, network: GuestAddress, localPath: string, remotePath: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!existsSync(localPath)) throw new FleetboxError('not_found', `cannot read ${localPath}: it does not exist`);
  const { file, args } = sshCommand(store, network, [`cat > ${quote(remotePath)}`], { tty: false });
  const result = await execa(file, args, { reject: false, timeout: timeoutMs, inputFile: localPath });
  if (result.exitCode !== 0) throw sshFailure(`copy to ${network.ip}:${remotePath}`, result, timeoutMs);
}

/** Copies a file from a guest to the host, streamed through `cat` on an SSH channel. */
export async function copyFrom(store: Store, network: GuestAddress, remotePath: string, localPath: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { file, args } = sshCommand(store, network, [`cat ${quote(remotePath)}`], { tty: false });
  const result = await execa(file, args, { reject: false, timeout: timeoutMs, stdin: 'ignore', stdout: { file: localPath } });
  if (result.exitCode !== 0) throw sshFailure(`copy from ${network.ip}:${remotePath}`, result, timeoutMs);
}
