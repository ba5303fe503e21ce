import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { validateName } from '../../store/names.js';
import { openStore } from '../output.js';

export function execCommand(): Command {
  return new Command('exec')
    .description("run a host command inside a cluster's network (its namespace), e.g. to reach members by IP")
    .argument('<cluster>', 'cluster name, e.g. db')
    .argument('<command...>', 'the command, after --')
    .addHelpText('after', '\nExamples:\n  $ fleetbox exec db -- ip -br addr\n  $ fleetbox exec db -- curl -s http://10.77.3.2/')
    .action(async (cluster: string, rawArgv: string[]) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { readJson } = await import('../../store/atomic.js');
      const { listMembers } = await import('../../store/members.js');
      const { NetworkRecordSchema } = await import('../../store/network-record.js');
      const argv = rawArgv[0] === '--' ? rawArgv.slice(1) : rawArgv;
      if (argv.length === 0) throw new FleetboxError('usage', 'name the command to run after --');
      validateName(cluster, 'cluster name');
      const store = openStore();
      if (listMembers(store, cluster).length === 0) throw new FleetboxError('not_found', `no cluster named ${cluster}; 'fleetbox ls' lists them`);
      const record = readJson(store.networkPath(cluster), NetworkRecordSchema);
      const namespace = record?.namespace ?? null;
      if (record?.kind === 'bridge' && (!namespace || !existsSync(`/run/netns/${namespace}`))) {
        throw new FleetboxError('not_running', `cluster ${cluster} has no live network; 'fleetbox up ${cluster}' first`);
      }
      const full = namespace ? ['ip', 'netns', 'exec', namespace, ...argv] : argv;
      const child = spawn(full[0] ?? '', full.slice(1), { stdio: 'inherit' });
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', (error) => reject(new FleetboxError('not_found', `cannot run ${argv[0]}: ${error.message}`)));
        child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
      });
      process.exitCode = code;
    });
}
