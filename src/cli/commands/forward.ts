import { Command } from 'commander';
import { FleetboxError, isFleetboxError } from '../../protocol/errors.js';
import { wholeNumber } from '../numbers.js';
import { openStore, printJson } from '../output.js';

export function forwardCommand(): Command {
  return new Command('forward')
    .description("a port on 127.0.0.1 piped to a member's port; it stays open until the member stops")
    .argument('<member>', 'member name, e.g. db-1')
    .argument('<port>', 'port on the member', wholeNumber(1, 65535, 'a port'))
    .option('--json', 'print {host, port, memberPort} as JSON')
    .addHelpText('after', '\nExample:\n  $ fleetbox forward db-1 5432\n  127.0.0.1:41235')
    .action(async (name: string, port: number, opts: { json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { forwardPort } = await import('../../control/forward.js');
      const { resolveOneMember } = await import('../../control/targets.js');
      const store = openStore();
      const ref = resolveOneMember(store, name);
      try {
        const forward = await forwardPort(store, ref, port);
        if (opts.json) printJson(forward);
        else process.stdout.write(`${forward.host}:${forward.port}\n`);
      } catch (error) {
        if (isFleetboxError(error, 'unreachable')) {
          throw new FleetboxError('not_running', `${name} is not running; 'fleetbox up ${name}' first`, { cause: error });
        }
        throw error;
      }
    });
}
