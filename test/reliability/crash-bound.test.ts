import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../dist/store/layout.js';
import { ROOT, destroyStore, tempStore } from '../helpers.js';
import { noProcessesWithin } from './leftovers.js';
import { RECOVERY_HELD, expectRecovery } from './recovery.js';
import { PartReport } from './report.js';

const report = new PartReport('1b', 'Crash points: bound holder, library client (kill -9 at every named point)');
let store: Store | undefined;

afterEach(async () => {
  if (store && existsSync(store.home)) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

/**
 * Runs test/fixtures/bound-owner.mjs (a test process that starts a bound 2-member cluster with
 * the library) with FLEETBOX_CRASH_AT set; resolves when it has exited or reported its cluster.
 */
function boundOwner(home: string, point: string): Promise<{ exit: string | undefined; started: boolean; kill(): void }> {
  const owner = spawn(process.execPath, [`${ROOT}/test/fixtures/bound-owner.mjs`, 'cpb', '2'], {
    env: { ...process.env, FLEETBOX_HOME: home, FLEETBOX_CRASH_AT: point },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ exit: undefined, started: false, kill: () => owner.kill('SIGKILL') }), 30_000);
    owner.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ exit: signal ?? `code ${code}`, started: false, kill: () => undefined });
    });
    createInterface({ input: owner.stdout }).once('line', () => {
      clearTimeout(timer);
      resolve({ exit: undefined, started: true, kill: () => owner.kill('SIGKILL') });
    });
  });
}

const POINTS = [
  'holder-after-control-listen',
  'holder-after-network-open',
  'holder-after-socket-listen',
  'holder-after-pidfile',
  'holder-mid-network-setup',
  'holder-mid-boot',
  'holder-before-ack',
  'client-after-spawn',
  'client-before-ack',
  'client-mid-up',
];

describe('kill -9 at every named point: bound holder and library client', () => {
  it.each(POINTS)('%s during startCluster-style bound up', async (point) => {
    store = tempStore();
    const s = store;
    const held = `${point.startsWith('client-') ? 'owner dead' : 'owner told of the failure'}: holder and members gone within 5 s; ${RECOVERY_HELD}`;
    await report.check(`SIGKILL at ${point} during a bound \`up\` (library)`, held, async () => {
      const owner = await boundOwner(s.home, point);
      owner.kill();
      // a bound cluster whose start was cut short must not survive its owner, whichever side died
      expect(owner.started, 'the owner reported a running cluster despite the crash').toBe(false);
      expect(owner.exit).toBe(point.startsWith('client-') ? 'SIGKILL' : 'code 1');
      expect(await noProcessesWithin(s, 5_000), 'a holder or member outlived its bound owner').toBe(true);
      await expectRecovery(s, 'cpb', 2);
      report.cover(point);
      report.count('crash injections');
    });
  });
});
