import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { notice, openStore, printJson } from '../output.js';

export function downCommand(): Command {
  return new Command('down')
    .alias('stop')
    .description('stop members gracefully; their state and disks stay (see rm)')
    .argument('[name...]', 'member (web-2) or cluster (web) names')
    .option('--all', 'stop every member')
    .option('--timeout <seconds>', 'graceful stop budget before escalating', '10')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ fleetbox down demo-2     one member\n  $ fleetbox down demo       every member of cluster demo\n  $ fleetbox down --all')
    .action(async (names: string[], opts: { all?: boolean; timeout: string; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { resolveTargets } = await import('../../control/targets.js');
      const { isStopTimeout, MAX_STOP_TIMEOUT_MS, stopMembersLocked } = await import('../../control/stop.js');
      const { listMembers } = await import('../../store/members.js');
      const store = openStore();
      if (!opts.all && names.length === 0) throw new FleetboxError('usage', 'name members or clusters to stop, or pass --all');
      if (opts.all && names.length > 0) throw new FleetboxError('usage', '--all takes no names');
      // The holder's rule (whole milliseconds, up to its maximum), checked before anything is asked.
      const timeoutMs = Math.round(Number(opts.timeout) * 1000);
      if (!isStopTimeout(timeoutMs)) {
        throw new FleetboxError('usage', `--timeout must be seconds from 0.001 to ${MAX_STOP_TIMEOUT_MS / 1000}, not ${opts.timeout}`);
      }
      const refs = opts.all ? listMembers(store) : resolveTargets(store, names);
      const results = await stopMembersLocked(store, refs, { timeoutMs });
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
