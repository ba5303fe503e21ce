import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { notice, openStore, printJson } from '../output.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function rmCommand(): Command {
  return new Command('rm')
    .description('stop members and delete their state and disks')
    .argument('[name...]', 'member (web-2) or cluster (web) names')
    .option('--all', 'every member on this machine')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ fleetbox rm demo --yes\n  $ fleetbox rm --all --yes')
    .action(async (names: string[], opts: { all?: boolean; yes?: boolean; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { removeMembers } = await import('../../control/remove.js');
      const { resolveTargets } = await import('../../control/targets.js');
      const { listMembers } = await import('../../store/members.js');
      const store = openStore();
      if (!opts.all && names.length === 0) throw new FleetboxError('usage', 'name members or clusters to remove, or pass --all');
      if (opts.all && names.length > 0) throw new FleetboxError('usage', '--all takes no names');
      const refs = opts.all ? listMembers(store) : resolveTargets(store, names);
      if (refs.length === 0) {
        if (opts.json) printJson({ removed: [], failed: [], ended: [] });
        else notice('nothing to remove');
        return;
      }
      if (!opts.yes) {
        const list = refs.map((r) => r.name).join(', ');
        if (!process.stdin.isTTY) throw new FleetboxError('usage', `refusing to delete ${list} without --yes (no terminal to ask)`);
        if (!(await confirm(`delete ${list} with their disks? [y/N] `))) throw new FleetboxError('usage', 'nothing removed');
      }
      const result = await removeMembers(store, refs);
      for (const { holderPid, members } of result.ended) {
        notice(`holder ${holderPid} of ${members.join(', ')} was alive but did not answer; its processes were ended`);
      }
      if (opts.json) printJson(result);
      else for (const name of result.removed) notice(`${name}: removed`);
      if (result.failed.length > 0) {
        throw new FleetboxError('internal', `could not remove ${result.failed.map((f) => `${f.name} (${f.message})`).join(', ')}`);
      }
    });
}
