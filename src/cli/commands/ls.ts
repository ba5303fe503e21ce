import { Command } from 'commander';
import { age, openStore, printJson, printTable } from '../output.js';

export function lsCommand(): Command {
  return new Command('ls')
    .alias('list')
    .description('list every member on this machine')
    .option('-q, --quiet', 'names only, one a line')
    .option('--json', 'print as JSON')
    .action(async (opts: { quiet?: boolean; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { getStatus } = await import('../../control/status.js');
      const { listClusters, listMembers } = await import('../../store/members.js');
      const { reconcileCluster } = await import('../../store/reconcile.js');
      const store = openStore();
      // Listing is where a user first looks after a crash: clean up what dead holders left.
      for (const cluster of listClusters(store)) reconcileCluster(store, cluster);
      const views = await Promise.all(listMembers(store).map((ref) => getStatus(store, ref)));
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
