import { existsSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../dist/store/layout.js';
import { destroyStore, tempStore } from '../helpers.js';
import { cli } from './harness.js';
import { RECOVERY_HELD, expectRecovery } from './recovery.js';
import { PartReport } from './report.js';

const report = new PartReport('1a', 'Crash points: detached holder, CLI client (kill -9 at every named point)');
let store: Store | undefined;

afterEach(async () => {
  if (store && existsSync(store.home)) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

const UP = ['up', 'cpd', '-n', '2', '--backend', 'process'];

interface Scenario {
  point: string;
  /** What the crashing command is doing. */
  during: string;
  /** Commands before the crash; `armed` ones carry FLEETBOX_CRASH_AT, so the holder they spawn inherits it. */
  setup: { args: string[]; armed: boolean }[];
  crash: string[];
  /** How many members `cpd-…` exist afterwards, for the recovery `up`. */
  count: number;
}

const holderDuringUp = (point: string): Scenario => ({ point, during: '`up cpd -n 2`', setup: [], crash: UP, count: 2 });

const SCENARIOS: Scenario[] = [
  holderDuringUp('holder-after-control-listen'),
  holderDuringUp('holder-after-network-open'),
  holderDuringUp('holder-after-socket-listen'),
  holderDuringUp('holder-after-pidfile'),
  holderDuringUp('holder-mid-network-setup'),
  holderDuringUp('holder-mid-boot'),
  {
    point: 'holder-mid-addmember',
    during: '`up cpd-2` re-joining a live cluster',
    setup: [{ args: ['up', 'cpd', '-n', '1', '--backend', 'process'], armed: true }],
    crash: ['up', 'cpd-2', '--backend', 'process'],
    count: 2,
  },
  {
    point: 'holder-mid-stop',
    during: '`down cpd-2`',
    setup: [{ args: UP, armed: true }],
    crash: ['down', 'cpd-2'],
    count: 2,
  },
  {
    point: 'holder-mid-shutdown',
    during: '`down cpd` (last member stops, holder shuts down)',
    setup: [{ args: UP, armed: true }],
    crash: ['down', 'cpd'],
    count: 2,
  },
  { point: 'client-after-spawn', during: '`up cpd -n 2` (holder spawned, not yet ready)', setup: [], crash: UP, count: 2 },
  { point: 'client-mid-up', during: '`up cpd -n 2` (configs written, cluster lock held)', setup: [], crash: UP, count: 2 },
  {
    point: 'client-mid-up',
    during: '`up cpd-2` re-join (lock held, live holder)',
    setup: [
      { args: UP, armed: false },
      { args: ['down', 'cpd-2'], armed: false },
    ],
    crash: ['up', 'cpd-2'],
    count: 2,
  },
  {
    point: 'client-mid-rm',
    during: '`rm cpd --yes` (members stopped, nothing deleted yet)',
    setup: [{ args: UP, armed: false }],
    crash: ['rm', 'cpd', '--yes'],
    count: 2,
  },
];

describe('kill -9 at every named point: detached holder and CLI client', () => {
  it.each(SCENARIOS.map((s) => [`${s.point} during ${s.during}`, s] as const))('%s', async (_title, scenario) => {
    store = tempStore();
    const s = store;
    const env = { FLEETBOX_CRASH_AT: scenario.point };
    await report.check(`SIGKILL at ${scenario.point} during ${scenario.during}`, RECOVERY_HELD, async () => {
      for (const step of scenario.setup) {
        const result = await cli(s, step.args, step.armed ? env : {});
        expect(result.code, `${step.args.join(' ')}: ${result.stderr}`).toBe(0);
      }
      const crashed = await cli(s, scenario.crash, env);
      if (scenario.point.startsWith('client-')) {
        // the CLI itself was killed right there
        expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      } else if (scenario.crash[0] === 'up') {
        // a holder that dies under `up` must make `up` fail, with one clear line, not hang or lie
        expect(crashed.code, crashed.stdout).toBe(1);
        expect(crashed.stderr.trim().split('\n').at(-1)).toMatch(/^fleetbox: /);
      } else {
        // `down` of a member whose holder died on it: the member is down all the same (pdeathsig)
        expect(crashed.signal).toBe(null);
      }
      await expectRecovery(s, 'cpd', scenario.count);
      report.cover(scenario.point);
      report.count('crash injections');
    });
  });
});
