import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { MemberConfig } from '../store/member-config.js';

export interface TerminalCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * The host command that gives the user's terminal to a member: an SSH session into a VM (a login
 * shell without a command), or for a process member, which has no machine of its own, the
 * command run on the host with the member's identity in its environment. Runs in the client,
 * so each backend's part is loaded only when asked for.
 */
export async function terminalCommand(
  target: { store: Store; config: MemberConfig; ip: string; namespace: string | null },
  shellCommand: string | undefined,
  options: { tty: boolean },
): Promise<TerminalCommand> {
  const { config } = target;
  const env = { FLEETBOX_NAME: config.name, FLEETBOX_CLUSTER: config.cluster, FLEETBOX_IP: target.ip, FLEETBOX_PORT: String(config.port) };
  switch (config.backend) {
    case 'process':
      if (shellCommand === undefined) throw new FleetboxError('usage', `${config.name} is a process member and has no shell; give a command after --`);
      return { file: '/bin/sh', args: ['-c', shellCommand], env };
    case 'qemu': {
      if (!target.namespace) throw new FleetboxError('not_running', `${config.name} has no cluster network; is it running?`);
      const { sshCommand } = await import('./qemu/ssh.js');
      const { file, args } = sshCommand(target.store, { ip: target.ip, namespace: target.namespace }, shellCommand === undefined ? [] : [shellCommand], {
        ...options,
        member: config.name,
      });
      return { file, args, env };
    }
  }
}
