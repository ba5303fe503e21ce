import { Command } from 'commander';
import { getStatus } from '../../control/status.js';
import { resolveTargets } from '../../control/targets.js';
import { listMembers } from '../../store/members.js';
import { age, openStore, printJson } from '../output.js';

export function statusCommand(): Command {
  return new Command('status')
    .description('what holders say about members (all of them when no name is given)')
    .argument('[name...]', 'member (web-2) or cluster (web) names')
    .option('--json', 'print as JSON')
    .action(async (names: string[], opts: { json?: boolean }) => {
      const store = openStore();
      const refs = names.length > 0 ? resolveTargets(store, names) : listMembers(store);
      const views = await Promise.all(refs.map((ref) => getStatus(store, ref)));
      if (opts.json) return printJson(names.length === 1 && views.length === 1 ? views[0] : views);
      for (const v of views) {
        const lines = [
          `${v.name}  ${v.state.toUpperCase()}${v.source === 'disk' ? '  (no live holder; last state on disk)' : ''}`,
          `  cluster  ${v.cluster}    backend ${v.backend}`,
          `  ip       ${v.ip ?? '-'}`,
          `  pid      ${v.pid ?? '-'}    holder ${v.holderPid ?? '-'}`,
          `  since    ${v.since} (${age(v.since)} ago)`,
          ...(v.error ? [`  error    ${v.error.split('\n')[0]}`] : []),
          ...(v.progress ? [`  progress ${v.progress}`] : []),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }
      if (views.length === 0) process.stderr.write("no members; start some with 'fleetbox up demo -n 3'\n");
    });
}
