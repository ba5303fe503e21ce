import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MemberView } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { listClusters, listMembers, readMemberConfig } from '../../dist/store/members.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { destroyStore, tempStore } from '../helpers.js';
import { cli, expectLsTruthful, settle, type CliResult } from './harness.js';
import { assertNoLeftovers } from './leftovers.js';
import { PartReport } from './report.js';

const report = new PartReport('4', 'Concurrency: 10 CLI commands at once on one cluster');
let store: Store | undefined;
afterEach(async () => {
  if (store && existsSync(store.home)) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

/**
 * Samples the store as fast as it can while commands race: every config.json, state.json and
 * network.json must parse whenever it exists, and no cluster may ever have two live holders.
 */
function watch(s: Store) {
  let reads = 0;
  let samples = 0;
  const torn: string[] = [];
  const doubleHeld: string[] = [];
  let running = true;
  const read = (path: string) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return; // not there (yet, or any more)
    }
    reads++;
    try {
      JSON.parse(text);
    } catch {
      torn.push(`${path}: ${JSON.stringify(text.slice(0, 80))}`);
    }
  };
  const loop = (async () => {
    while (running) {
      samples++;
      for (const cluster of listClusters(s)) {
        read(s.networkPath(cluster));
        const holders = new Set<number>();
        let members: string[] = [];
        try {
          members = readdirSync(s.clusterDir(cluster));
        } catch {
          // removed while we looked
        }
        for (const member of members) {
          if (member.endsWith('.json')) continue;
          read(join(s.clusterDir(cluster), member, 'config.json'));
          read(join(s.clusterDir(cluster), member, 'state.json'));
          const holder = liveHolder(join(s.clusterDir(cluster), member, 'holder.pid'));
          if (holder) holders.add(holder.pid);
        }
        if (holders.size > 1) doubleHeld.push(`${cluster}: holders ${[...holders].join(', ')}`);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { reads, samples, torn, doubleHeld };
    },
  };
}

/** A command that lost a race must fail cleanly: exit 1 or 3 with one `fleetbox:` line, never a crash. */
function expectClean(args: string[], r: CliResult): void {
  expect(r.signal, `${args.join(' ')} was killed`).toBe(null);
  if (r.code !== 0) {
    expect([1, 3], `${args.join(' ')}: ${r.stderr}`).toContain(r.code);
    expect(r.stderr.trim().split('\n').at(-1), args.join(' ')).toMatch(/^fleetbox: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
}

/** After the dust settles: one holder per cluster, every member dir has a config, ls is truthful. */
async function expectConsistent(s: Store, cluster: string, count: number): Promise<void> {
  await settle(s);
  const final = await cli(s, ['up', cluster, '-n', String(count), '--backend', 'process', '--json']);
  expect(final.code, final.stderr).toBe(0);
  expect((JSON.parse(final.stdout) as MemberView[]).map((m) => m.state)).toEqual(Array(count).fill('running'));
  // Member directories only: the cluster folder also holds files, and the heartbeat's
  // `health.json.<pid>.tmp` exists for an instant on every write.
  for (const entry of readdirSync(s.clusterDir(cluster), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = entry.name;
    expect(readMemberConfig(s, cluster, dir), `member dir ${dir} without its config`).toBeDefined();
  }
  const views = await expectLsTruthful(s);
  const holders = new Set(views.filter((v) => v.state === 'running').map((v) => v.holderPid));
  expect(holders.size, 'holders of the cluster').toBe(1);
  const pids = new Set(listMembers(s, cluster).map((ref) => liveHolder(s.pidfilePath(cluster, ref.name))?.pid).filter(Boolean));
  expect(pids).toEqual(holders);
}

const P = ['--backend', 'process'];
const MIXES: string[][][] = [
  Array.from({ length: 10 }, () => ['up', 'cc', '-n', '3', '--backend', 'process']),
  [
    ['up', 'cc', '-n', '3', ...P], ['down', 'cc-2'], ['up', 'cc-2', ...P], ['down', 'cc'], ['up', 'cc', '-n', '3', ...P],
    ['status', 'cc'], ['up', 'cc-3', ...P], ['down', 'cc-1'], ['up', 'cc', '-n', '4', ...P], ['ls', '--json'],
  ],
  [
    ['up', 'cc', '-n', '3', ...P], ['rm', 'cc-3', '--yes'], ['up', 'cc-3', ...P], ['down', 'cc'], ['rm', 'cc-2', '--yes'],
    ['up', 'cc', '-n', '3', ...P], ['down', 'cc-1'], ['up', 'cc-2', ...P], ['rm', 'cc-4', '--yes'], ['up', 'cc', '-n', '2', ...P],
  ],
  [
    ['down', 'cc'], ['down', 'cc'], ['up', 'cc', '-n', '3', ...P], ['up', 'cc', '-n', '3', ...P], ['rm', 'cc', '--yes'],
    ['up', 'cc', '-n', '3', ...P], ['down', 'cc-2'], ['down', 'cc-3'], ['up', 'cc-2', ...P], ['up', 'cc-3', ...P],
  ],
  [
    ['rm', 'cc', '--yes'], ['up', 'cc', '-n', '3', ...P], ['rm', 'cc', '--yes'], ['up', 'cc', '-n', '3', ...P], ['down', 'cc'],
    ['up', 'cc', '-n', '3', ...P], ['rm', 'cc-1', '--yes'], ['up', 'cc-1', ...P], ['down', 'cc-2'], ['up', 'cc', '-n', '3', ...P],
  ],
];

describe('concurrency', () => {
  it.each(MIXES.map((mix, i) => [i + 1, mix] as const))('mix %i: 10 commands at once, then one up: one holder, nothing torn, nothing lost', async (round, mix) => {
    store = tempStore();
    const s = store;
    // mixes after the first start from a running cluster
    if (round > 1) expect((await cli(s, ['up', 'cc', '-n', '3', '--backend', 'process'])).code).toBe(0);
    const watcher = watch(s);
    const results = await Promise.all(mix.map((args) => cli(s, args)));
    const seen = await watcher.stop();
    mix.forEach((args, i) => expectClean(args, results[i] as CliResult));
    const failed = results.filter((r) => r.code !== 0).length;
    const what = mix.map((a) => a.slice(0, 2).join(' ')).join(', ');
    const held = `every command exit 0 or a clean one-line failure (${failed} of 10 here); ${seen.reads} reads of config/state/network.json all parsed; never two live holders in ${seen.samples} samples; afterwards one holder, every member dir has its config, ls truthful`;
    report.add(`mix ${round}: ${what}`, held, 10, seen.torn.length === 0 && seen.doubleHeld.length === 0);
    report.count('concurrent commands', 10);
    expect(seen.torn).toEqual([]);
    expect(seen.doubleHeld).toEqual([]);
    if (round === 1) {
      expect(results.map((r) => r.code)).toEqual(Array(10).fill(0));
    }
    await expectConsistent(s, 'cc', 3);
    const rm = await cli(s, ['rm', '--all', '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    await assertNoLeftovers(s);
    rmSync(s.home, { recursive: true, force: true });
  }, 90_000);

  it('two stores, one cluster name, at once: their members never share an address', async () => {
    store = tempStore();
    const s = store;
    const other = tempStore();
    try {
      const [a, b] = await Promise.all([s, other].map((st) => cli(st, ['up', 'twin', '-n', '2', '--backend', 'process', '--json'])));
      const ips = [a, b].flatMap((r) => (JSON.parse(r?.stdout ?? '[]') as MemberView[]).map((m) => m.ip));
      const ok = a?.code === 0 && b?.code === 0 && new Set(ips).size === 4;
      report.add('`up twin -n 2` in two stores at once (parallel test runs)', 'both run; 4 distinct addresses (loopback addresses are machine-wide)', 2, ok);
      expect([a?.code, b?.code]).toEqual([0, 0]);
      expect(new Set(ips).size).toBe(4);
      await expectLsTruthful(s);
      await expectLsTruthful(other);
    } finally {
      await destroyStore(other);
    }
  }, 60_000);

  it('10 different clusters at once: each gets its own holder and its own subnet', async () => {
    store = tempStore();
    const s = store;
    const names = Array.from({ length: 10 }, (_, i) => `par${i}`);
    const watcher = watch(s);
    const results = await Promise.all(names.map((n) => cli(s, ['up', n, '--backend', 'process', '--json'])));
    const seen = await watcher.stop();
    expect(results.map((r) => r.code)).toEqual(Array(10).fill(0));
    const subnets = names.map((n) => (JSON.parse(readFileSync(s.networkPath(n), 'utf8')) as { subnet: string }).subnet);
    const holders = names.map((n) => liveHolder(s.pidfilePath(n, `${n}-1`))?.pid);
    const ok = new Set(subnets).size === 10 && new Set(holders).size === 10 && seen.torn.length === 0;
    report.add('10 `up` of 10 different clusters at once', `10 holders, 10 distinct subnets; ${seen.reads} reads of the state files all parsed`, 10, ok);
    expect(new Set(subnets).size).toBe(10);
    expect(new Set(holders).size).toBe(10);
    expect(seen.torn).toEqual([]);
    await expectLsTruthful(s);
    const rm = await cli(s, ['rm', '--all', '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    await assertNoLeftovers(s);
    rmSync(s.home, { recursive: true, force: true });
  }, 90_000);
});
