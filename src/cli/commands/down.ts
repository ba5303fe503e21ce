import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { notice, openStore, printJson } from '../output.js';

export function downCommand(): Command {
  return new Command('down')
    .alias('stop')
    .description('stop members gracefully; their state and disks stay (see rm)')
    .argument('[name...]', 'member (web-2) or cluster (web) names')
    .option('--all', 'stop every member')
    .option('--timeout <seconds>', 'graceful stop budget before escalating', (v) => Number(v), 10)
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ fleetbox down demo-2     one member\n  $ fleetbox down demo       every member of cluster demo\n  $ fleetbox down --all')
    .action(async (names: string[], opts: { all?: boolean; timeout: number; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { resolveTargets } = await import('../../control/targets.js');
      const { stopMembers } = await import('../../control/stop.js');
      const { listMembers } = await import('../../store/members.js');
      const store = openStore();
      if (!opts.all && names.length === 0) throw new FleetboxError('usage', 'name members or clusters to stop, or pass --all');
      if (opts.all && names.length > 0) throw new FleetboxError('usage', '--all takes no names');
      if (!Number.isFinite(opts.timeout) || opts.timeout <= 0) throw new FleetboxError('usage', '--timeout must be a positive number of seconds');
      const refs = opts.all ? listMembers(store) : resolveTargets(store, names);
      const results = await stopMembers(store, refs, { timeoutMs: Math.round(opts.timeout * 1000) });
      const failed = results.filter((r) => r.result.status === 'rejected');
      if (opts.json) {
        printJson(results.map(({ ref, result }) => ({
          name: ref.name,
          ok: result.status === 'fulfilled',
          ...(result.status === 'fulfilled' ? { state: result.value.state } : { error: String((result.reason as Error).message) }),
        })));
      } else {
        for (const { ref, result } of results) {
          if (result.status === 'fulfilled') notice(`${ref.name}: ${result.value.state}`);
        }
      }
      if (failed.length > 0) {
        const first = (failed[0]?.result as PromiseRejectedResult).reason as Error;
        const code = first instanceof FleetboxError ? first.code : 'internal';
        throw new FleetboxError(code, `${failed.length} member(s) did not stop: ${first.message}`);
      }
    });
}
