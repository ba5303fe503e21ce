import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { describeShape } from '../../protocol/fault-text.js';
import type { Fault, NetworkShape } from '../../protocol/schemas.js';
import { notice, openStore, printJson } from '../output.js';

/** `a-1 a-2 / a-3` → [['a-1', 'a-2'], ['a-3']]; a side may also be glued: `a-1,a-2/a-3`. */
export function parseSides(words: readonly string[]): string[][] {
  const sides: string[][] = [[]];
  for (const word of words.flatMap((w) => w.split(/(\/)/)).flatMap((w) => (w === '/' ? [w] : w.split(',')))) {
    if (word === '/') sides.push([]);
    else if (word !== '') sides[sides.length - 1]?.push(word);
  }
  return sides;
}

function describe(fault: Fault): string {
  switch (fault.kind) {
    case 'partition':
      return `partition  ${fault.sides.map((side) => side.join(' ')).join(' / ')}`;
    case 'isolate':
      return `isolate    ${fault.member}`;
    case 'pause':
      return `pause      ${fault.member}`;
    case 'delay':
      return `delay      ${fault.member}: ${describeShape(fault.shape)}${fault.to ? ` to ${fault.to.join(' ')}` : ''}`;
  }
}

/** A number option: `200`, `2.5`; `percent` also takes `10%`. Anything else is a usage error. */
function parseAmount(flag: string, text: string | undefined, percent = false): number {
  if (text === undefined) return 0;
  const trimmed = percent ? text.replace(/%$/, '') : text;
  const value = /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (Number.isNaN(value)) throw new FleetboxError('usage', `${flag} takes a number${percent ? ' (10 or 10%)' : ' of milliseconds'}, not '${text}'`);
  return value;
}

interface DelayOptions {
  ms?: string;
  jitter?: string;
  loss?: string;
  rate?: string;
  to?: string[];
  json?: boolean;
}

export function shapeOf(opts: DelayOptions): NetworkShape {
  return {
    delayMs: parseAmount('--ms', opts.ms),
    jitterMs: parseAmount('--jitter', opts.jitter),
    lossPercent: parseAmount('--loss', opts.loss, true),
    ...(opts.rate !== undefined && { rate: opts.rate }),
  };
}

function print(faults: Fault[], json: boolean, empty: string): void {
  if (json) {
    printJson(faults);
    return;
  }
  if (faults.length === 0) notice(empty);
  for (const fault of faults) process.stdout.write(`${describe(fault)}   (since ${fault.since})\n`);
}

async function order(op: 'partition' | 'isolate' | 'pause' | 'resume' | 'crash', words: string[], json: boolean): Promise<void> {
  const { checkFaultOrder, sendFaultOrder } = await import('../../control/faults.js');
  const spec = op === 'partition' ? { op, sides: parseSides(words) } : { op, members: words };
  checkFaultOrder(spec);
  const via = (spec.sides?.flat() ?? spec.members ?? [])[0] ?? '';
  const reply = await sendFaultOrder(openStore(), via, spec);
  print(reply.faults, json, 'no fault in force');
}

export function faultCommand(): Command {
  const fault = new Command('fault')
    .description('break a running cluster on purpose (partition, isolate, delay, pause, crash) and heal it; each returns once in force')
    .addHelpText(
      'after',
      `
Faults are recorded (clusters/<cluster>/faults.json), shown amber by status and the dashboard as
"fault injected", and healed by heal, down, rm and a holder's exit. qemu clusters only.

Examples:
  $ fleetbox fault partition db-1 db-2 / db-3   traffic between the sides is dropped
  $ fleetbox fault isolate db-3                 db-3 is cut off from every other member
  $ fleetbox fault delay db-2 --ms 200 --jitter 50 --to db-1
                                                what db-2 sends to db-1 is 200±50 ms late
  $ fleetbox fault delay db-3 --loss 10% --rate 1mbit
  $ fleetbox fault pause db-1                   the VM is frozen (clock, processes, network)
  $ fleetbox fault resume db-1
  $ fleetbox fault crash db-2                   power cut; 'fleetbox up db-2' boots it again
  $ fleetbox fault ls
  partition  db-1 db-2 / db-3   (since 2026-11-26T22:40:03.120Z)
  $ fleetbox fault heal db                      every fault of cluster db (or name members, or --all)`,
    );
  const json = { flag: '--json', text: 'print the faults in force as JSON' };
  fault
    .command('delay')
    .description("shape what members send, with netem in the guest: delay ± jitter, loss, rate (a new delay replaces the member's last)")
    .argument('<members...>', 'members of one cluster')
    .option('--ms <n>', 'delay every packet by n milliseconds')
    .option('--jitter <n>', 'vary the delay by up to ± n milliseconds (packets may be reordered)')
    .option('--loss <percent>', 'drop this share of packets, e.g. 10%')
    .option('--rate <rate>', 'limit the sending rate, e.g. 1mbit, 500kbit')
    .option('--to <members...>', 'only what is sent to these members (default: everything)')
    .option(json.flag, json.text)
    .action(async (members: string[], opts: DelayOptions) => {
      const { checkFaultOrder, sendFaultOrder } = await import('../../control/faults.js');
      const to = opts.to?.flatMap((t) => t.split(',')).filter(Boolean);
      const spec = { op: 'delay' as const, members, shape: shapeOf(opts), ...(to && { to }) };
      checkFaultOrder(spec);
      const reply = await sendFaultOrder(openStore(), members[0] ?? '', spec);
      print(reply.faults, opts.json ?? false, 'no fault in force');
    });
  fault
    .command('partition')
    .description('split members into sides separated by /; traffic between sides is dropped')
    .argument('<members...>', 'members of one cluster, sides separated by /')
    .option(json.flag, json.text)
    .action((words: string[], opts: { json?: boolean }) => order('partition', words, opts.json ?? false));
  for (const [op, text] of [
    ['isolate', 'cut a member off from every other member'],
    ['pause', 'freeze a member (QMP stop): it keeps its memory and uptime'],
    ['resume', 'let a paused member run on'],
    ['crash', 'a power cut: the VM is killed with no shutdown; it ends stopped, its disk as the cut left it (fleetbox up starts it again)'],
  ] as const) {
    fault
      .command(op)
      .description(text)
      .argument('<members...>', 'members of one cluster')
      .option(json.flag, json.text)
      .action((words: string[], opts: { json?: boolean }) => order(op, words, opts.json ?? false));
  }
  fault
    .command('heal')
    .description('end faults: of the named members or clusters, or with --all every fault')
    .argument('[names...]', 'members or clusters')
    .option('--all', 'every cluster')
    .option(json.flag, 'print the faults healed as JSON')
    .action(async (names: string[], opts: { all?: boolean; json?: boolean }) => {
      const { checkFaultOrder, sendFaultOrder } = await import('../../control/faults.js');
      const { listClusters, listMembers } = await import('../../store/listing.js');
      const { readFaults } = await import('../../store/faults-record.js');
      const { clusterOf } = await import('../../store/names.js');
      if (names.length === 0 && !opts.all) throw new FleetboxError('usage', 'name members or clusters to heal, or pass --all');
      if (names.length > 0 && opts.all) throw new FleetboxError('usage', 'either names or --all, not both');
      const { reconcileCluster } = await import('../../store/reconcile.js');
      const store = openStore();
      const clusters = opts.all ? listClusters(store) : [...new Set(names.map((n) => clusterOf(n)))];
      const healed: Fault[] = [];
      for (const cluster of clusters) {
        reconcileCluster(store, cluster);
        if (readFaults(store, cluster).length === 0) continue;
        const members = names.filter((n) => n !== cluster && clusterOf(n) === cluster);
        if (members.length > 0) checkFaultOrder({ op: 'heal', members });
        const via = members[0] ?? listMembers(store, cluster)[0]?.name;
        if (!via) continue;
        const reply = await sendFaultOrder(store, via, { op: 'heal', ...(members.length > 0 && { members }) });
        healed.push(...(reply.healed ?? []));
      }
      if (opts.json) printJson(healed);
      else if (healed.length === 0) notice('nothing to heal');
      else for (const f of healed) process.stdout.write(`healed ${describe(f)}\n`);
    });
  fault
    .command('ls')
    .description('the faults in force, per cluster')
    .option(json.flag, json.text)
    .action(async (opts: { json?: boolean }) => {
      const { listClusters } = await import('../../store/listing.js');
      const { readFaults } = await import('../../store/faults-record.js');
      const { reconcileCluster } = await import('../../store/reconcile.js');
      const store = openStore();
      // A record whose holder died lists faults that went with its namespace and VMs.
      for (const cluster of listClusters(store)) reconcileCluster(store, cluster);
      print(listClusters(store).flatMap((c) => readFaults(store, c)), opts.json ?? false, 'no fault in force');
    });
  return fault;
}
