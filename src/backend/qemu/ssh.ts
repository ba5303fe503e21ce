import { existsSync } from 'node:fs';
import { sshKeyPaths } from '../../image/ssh-key.js';
import { FleetboxError } from '../../protocol/errors.js';
import type { Store } from '../../store/layout.js';

/** Where a guest is: its address and the cluster's namespace (null: not on a bridge network). */
export interface GuestAddress {
  ip: string;
  namespace: string | null;
}

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
  const args = [
    'netns', 'exec', network.namespace,
    'ssh',
    ...sshOptions(store),
    options.tty ? '-t' : '-T',
    // `--` ends ssh's options: a remote command starting with '-' is not read as one.
    '--',
    `root@${network.ip}`,
    ...remoteArgs,
  ];
  return { file: 'ip', args };
}
