import type { BackendContext, WaitingHealthCheck } from '../types.js';
import type { GuestAgent } from './agent.js';
import { agentReadFile } from './agent-files.js';

/** /proc/net/tcp line of a socket listening (state 0A) on port 22 (0016), any address. */
const SSH_LISTENING = /^\s*\d+: [0-9A-F]{8}:0016 0{8}:0000 0A /m;

/**
 * A call's own budget. The health loop's deadline (1 s by default) decides the verdict; a call
 * still waiting after it is left to finish rather than reset the channel under a running exec.
 */
const CALL_MS = 5_000;

/**
 * What the holder checks inside a qemu guest: the agent answers (without it these checks are
 * blind, a timed-out command cannot be ended and a command with no free exec port cannot run:
 * red), and its SSH server listens (without it only interactive `ssh` and
 * `forward` fail: amber).
 */
export function agentHealthChecks(agentOf: (ctx: BackendContext) => GuestAgent): WaitingHealthCheck[] {
  return [
    {
      name: 'agent',
      async check(ctx) {
        try {
          await agentOf(ctx).call('guest-ping', undefined, CALL_MS);
          return { status: 'pass', detail: 'the guest agent answers' };
        } catch (error) {
          return { status: 'fail', detail: `the guest agent does not answer: ${(error as Error).message}` };
        }
      },
    },
    {
      name: 'ssh',
      async check(ctx) {
        let table: string;
        try {
          table = (await agentReadFile(agentOf(ctx), '/proc/net/tcp', 0, 1 << 20)).data.toString('latin1');
        } catch {
          return { status: 'skip', detail: 'not checked: the guest agent does not answer' };
        }
        return SSH_LISTENING.test(table)
          ? { status: 'pass', detail: 'sshd listens on port 22' }
          : { status: 'warn', detail: 'nothing listens on port 22 in the guest: fleetbox ssh (interactive) and forward fail; exec and cp still work' };
      },
    },
  ];
}
