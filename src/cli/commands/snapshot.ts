import { Command } from 'commander';
import { age, notice, openStore, printJson, printTable } from '../output.js';

const mib = (bytes: number) => `${Math.round(bytes / 1048576)} MiB`;

function lsSnapshotsCommand(): Command {
  return new Command('ls')
    .alias('list')
    .description('list the snapshots')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { snapshotSummaries } = await import('../../control/snapshot.js');
      const rows = snapshotSummaries(openStore());
      if (opts.json) return printJson(rows);
      if (rows.length === 0) {
        notice("no snapshots; take one of a running cluster with 'fleetbox snapshot CLUSTER NAME'");
        return;
      }
      printTable(
        ['NAME', 'OF', 'MEMBERS', 'SIZE', 'AGE', 'FORKS'],
        rows.map((r) => [r.name, r.cluster ?? `(${r.problem ?? 'unreadable'})`, String(r.members?.length ?? '-'), r.bytes === undefined ? '-' : mib(r.bytes), r.createdAt ? age(r.createdAt) : '-', r.forks.join(',') || '-']),
      );
    });
}

function rmSnapshotCommand(): Command {
  return new Command('rm')
    .description('delete snapshots (refused while a cluster forked from one exists, unless --force)')
    .argument('<name...>', 'snapshot names')
    .option('--force', 'delete even when forks of it exist (they can then no longer start again)')
    .action(async (names: string[], opts: { force?: boolean }) => {
      const { removeSnapshot } = await import('../../control/snapshot.js');
      const store = openStore();
      for (const name of names) {
        removeSnapshot(store, name, { force: opts.force ?? false });
        notice(`${name}: removed`);
      }
    });
}

export function snapshotCommand(): Command {
  return new Command('snapshot')
    .description('save a running cluster whole (memory, processes, disks) to start forks of it: snapshot CLUSTER NAME, ls, rm')
    .argument('[cluster]', 'the running cluster to save')
    .argument('[name]', 'the snapshot name (for up --from NAME)')
    .option('--json', 'print the snapshot as JSON')
    // 'snapshot ls --json': an option after a subcommand is the subcommand's.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
Every member is paused for the save (one moment of the whole cluster), saved, and runs on. A
fork starts each member where it was saved, with the same addresses, in its own network:

Examples:
  $ fleetbox up db -n 3 && fleetbox ssh db-1 -- ./load-fixtures
  $ fleetbox snapshot db warm
  $ fleetbox up t1 --from warm        t1-1..3: db-1..3 as saved, renamed
  $ fleetbox snapshot ls
  $ fleetbox snapshot rm warm

Members that are VMs with the RAM root (and --disk) can be saved; --rootfs host/image and
--share members cannot (QEMU cannot save a file server's state).`,
    )
    .addCommand(lsSnapshotsCommand())
    .addCommand(rmSnapshotCommand())
    .action(async (cluster: string | undefined, name: string | undefined, opts: { json?: boolean }, command: Command) => {
      if (cluster === undefined || name === undefined) {
        command.help({ error: true });
        return;
      }
      const { takeSnapshot } = await import('../../control/snapshot.js');
      const store = openStore();
      const manifest = await takeSnapshot(store, cluster, name, { onSaving: () => notice(`saving ${cluster} as ${name} (its members pause meanwhile)`) });
      if (opts.json) return printJson(manifest);
      printTable(
        ['NAME', 'OF', 'MEMBERS', 'SIZE', 'PAUSED'],
        [[manifest.name, manifest.cluster, manifest.members.map((m) => m.name).join(','), mib(manifest.bytes), `${(manifest.pausedMs / 1000).toFixed(2)} s`]],
      );
    });
}
