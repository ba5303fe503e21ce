import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { parseWhole, seconds } from '../numbers.js';
import { openStore, printJson } from '../output.js';

interface StatusOptions {
  json?: boolean;
  timeout: number;
  hosts?: string;
  token?: string;
  ca?: string;
  cert?: string;
  key?: string;
  skewWarn: number;
  issues: number;
}

/**
 * `fleetbox status`: the fleet rolled up red/amber/green with issues and a next action; with
 * one member name, that member in detail. The heavy parts load lazily: the local path needs
 * neither zod nor execa, which keeps the command inside its start-up budget.
 */
export function statusCommand(): Command {
  return new Command('status')
    .description('fleet health: every cluster and member rolled up red/amber/green, with the next action')
    .argument('[name...]', 'member (web-2) or cluster (web) names; all when none')
    .option('--json', 'print the snapshot as JSON (one member name: that member\'s row)')
    .option('--timeout <seconds>', 'per-member (and per-host) answer deadline', seconds(600), 2)
    .option('--hosts <list>', "other machines' dashboards to merge, e.g. hostA:7070,hostB:7070")
    .option('--token <token>', 'bearer token for --hosts (default $FLEETBOX_TOKEN)')
    .option('--ca <file>', '--hosts over TLS: CA that signed the dashboards\' certificates')
    .option('--cert <file>', '--hosts over mutual TLS: client certificate')
    .option('--key <file>', '--hosts over mutual TLS: client key')
    .option('--skew-warn <ms>', '--hosts: warn when a host\'s clock is off by more than this', parseWhole, 500)
    .option('--issues <n>', 'list at most this many issues in the summary', parseWhole, 10)
    .addHelpText(
      'after',
      `
Examples:
  $ fleetbox status                          every cluster and member on this machine
  $ fleetbox status web-2                    one member in detail (--json: its row)
  $ fleetbox status --json                   the snapshot (schema: docs/health.md)
  $ fleetbox status --hosts a:7070,b:7070    merge other machines' dashboards

Red: act now (stale holder, failed member, holder gone, failing check). Amber: watch or wait
(starting, not answering yet, degraded). Green: healthy. Grey: stopped on purpose.`,
    )
    .action(async (names: string[], opts: StatusOptions) => {
      const timeoutMs = Math.round(opts.timeout * 1000);
      const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
      const { renderFleet, renderMember } = await import('../../health/render-text.js');
      if (opts.hosts !== undefined) {
        const hosts = opts.hosts.split(',').map((h) => h.trim()).filter(Boolean);
        if (hosts.length === 0) throw new FleetboxError('usage', '--hosts needs at least one host:port');
        const { collectRemote } = await import('../../health/remote.js');
        const snapshot = await collectRemote(hosts, {
          timeoutMs,
          token: opts.token ?? process.env.FLEETBOX_TOKEN,
          tls: { ca: opts.ca, cert: opts.cert, key: opts.key },
          skewWarnMs: opts.skewWarn,
          issueLimit: opts.issues,
          names,
        });
        for (const warning of snapshot.warnings) process.stderr.write(`warning: ${warning.message}\n`);
        if (opts.json) return printJson(snapshot);
        process.stdout.write(renderFleet(snapshot, { colour }));
        return;
      }
      const { collectLocal } = await import('../../health/local.js');
      const store = openStore();
      const snapshot = await collectLocal(store, { names, timeoutMs, issueLimit: opts.issues });
      for (const warning of snapshot.warnings) process.stderr.write(`warning: ${warning.message}\n`);
      const single = names.length === 1 && snapshot.members.length === 1 && snapshot.members[0]?.name === names[0] ? snapshot.members[0] : undefined;
      if (opts.json) return printJson(single ?? snapshot);
      if (single) {
        process.stdout.write(renderMember(single, { colour, now: Date.now() }));
        return;
      }
      process.stdout.write(renderFleet(snapshot, { colour }));
    });
}
