import { Command } from 'commander';
import type { MemberView } from '../../control/status.js';
import type { Store } from '../../store/layout.js';
import { age, openStore, printJson, printTable } from '../output.js';

/**
 * The listing when some member has no live holder or did not answer: clean up what dead holders
 * left (listing is where a user first looks after a crash), then each member's status, with the
 * disk as the fallback.
 */
async function listCarefully(store: Store): Promise<MemberView[]> {
  const { getStatus } = await import('../../control/status.js');
  const { listClusters, listMembers } = await import('../../store/members.js');
  const { reconcileCluster } = await import('../../store/reconcile.js');
  for (const cluster of listClusters(store)) reconcileCluster(store, cluster);
  return Promise.all(listMembers(store).map((ref) => getStatus(store, ref)));
}

export function lsCommand(): Command {
  return new Command('ls')
    .alias('list')
    .description('list every member on this machine')
    .option('-q, --quiet', 'names only, one a line')
    .option('--json', 'print as JSON')
    .action(async (opts: { quiet?: boolean; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { listQuickly } = await import('../../health/quick-list.js');
      const store = openStore();
      const views = (await listQuickly(store)) ?? (await listCarefully(store));
      if (opts.json) return printJson(views);
      if (opts.quiet) {
        if (views.length > 0) process.stdout.write(views.map((v) => v.name).join('\n') + '\n');
        return;
      }
      if (views.length === 0) {
        process.stderr.write("no members; start some with 'fleetbox up demo -n 3'\n");
        return;
      }
      printTable(
        ['NAME', 'CLUSTER', 'STATE', 'IP', 'PID', 'AGE', 'BACKEND'],
        views.map((v) => [v.name, v.cluster, v.unresponsive ? `${v.state}? (holder ${v.holderPid} not answering)` : v.state, v.ip, v.pid, age(v.since), v.backend]),
      );
    });
}
