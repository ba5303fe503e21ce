import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { templatesDir } from '../../dist/backend/qemu/template.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { faultsPath } from '../../dist/store/faults-record.js';
import { Store } from '../../dist/store/layout.js';
import { destroyStore } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from '../qemu/harness.js';
import { cli } from './harness.js';
import { noteNetworks } from './leftovers.js';
import { RECOVERY_HELD, expectRecovery } from './recovery.js';
import { PartReport } from './report.js';

const report = new PartReport('1c', 'Crash points on real VMs: qemu members and cluster namespaces (kill -9 at named points)');
const skip = reportSkip('crash points on real VMs', cannotBootVms());
let store: Store | undefined;

afterEach(async () => {
  if (store && existsSync(store.home)) await destroyStore(store);
  store = undefined;
});
afterAll(async () => {
  if (!skip) await report.flush();
});

const UP = ['up', 'cq', '-n', '2', '--backend', 'qemu'];

/** The points where a VM cluster has the most half-made state: namespace, taps, QEMU, DNS. */
/** Removes the templates of `memoryMiB` members from the shared image cache, so the next is really made. */
function dropTemplates(s: Store, memoryMiB: number): void {
  const root = templatesDir(s);
  if (!existsSync(root)) return;
  for (const entry of readdirSync(root)) {
    const manifest = join(root, entry, 'manifest.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { memoryMiB?: number }).memoryMiB === memoryMiB) {
      rmSync(join(root, entry), { recursive: true, force: true });
    }
  }
}

/** The fork's source is not part of what recovery checks (the fork restores from the snapshot). */
async function removeSource(s: Store): Promise<void> {
  const rm = await cli(s, ['rm', 'cq', '--yes'], {}, 60_000);
  expect(rm.code, rm.stderr).toBe(0);
}

/** After the holder died during `snapshot`: nothing listed, and its client removed the partial folder. */
async function holderCrashedMidSnapshot(s: Store): Promise<void> {
  const listed = await cli(s, ['snapshot', 'ls', '--json'], {}, 60_000);
  expect(listed.stdout).toBe('[]\n');
  expect(readdirSync(s.snapshotsDir)).toEqual([]);
}

/** After the client died during `snapshot`: nothing listed, the members run on, the next snapshot removes the partial. */
async function clientCrashedMidSnapshot(s: Store): Promise<void> {
  const listed = await cli(s, ['snapshot', 'ls', '--json'], {}, 60_000);
  expect(listed.stdout).toBe('[]\n');
  const again = await cli(s, ['snapshot', 'cq', 'again'], {}, 120_000);
  expect(again.code, again.stderr).toBe(0);
  expect(readdirSync(s.snapshotsDir)).toEqual(['again']);
}

const SCENARIOS: { point: string; during: string; setup: string[][]; crash: string[]; freshTemplate?: number; cluster?: string; after?: (s: Store) => Promise<void> }[] = [
  { point: 'holder-mid-network-setup', during: '`up cq -n 2` (namespace recorded, taps being made)', setup: [], crash: UP },
  { point: 'holder-mid-boot', during: '`up cq -n 2 --boot` (QEMU started, guest booting)', setup: [], crash: [...UP, '--boot'] },
  { point: 'holder-mid-boot', during: '`up cq -n 2` (clones restored, identities given)', setup: [], crash: UP },
  { point: 'holder-mid-stop', during: '`down cq-2` (guest powering off)', setup: [UP], crash: ['down', 'cq-2'] },
  // A fault recorded (write-ahead) and not yet in force: bridge rules, or netem in the guest.
  { point: 'holder-mid-fault', during: '`fault partition cq-1 / cq-2` (recorded, rules not yet applied)', setup: [UP], crash: ['fault', 'partition', 'cq-1', '/', 'cq-2'] },
  { point: 'holder-mid-fault', during: '`fault delay cq-1 --ms 100` (recorded, netem not yet set)', setup: [UP], crash: ['fault', 'delay', 'cq-1', '--ms', '100'] },
  // Fast starts: a template being made (its own QEMU, a build directory), then a clone being
  // restored. 192 MiB members get a template of their own, so this one is really made here.
  { point: 'holder-mid-template', during: '`up cq -n 2 --fast --mem 192` (template guest booting)', setup: [], crash: [...UP, '--fast', '--mem', '192'], freshTemplate: 192 },
  { point: 'holder-mid-clone', during: '`up cq -n 2 --fast --mem 192` (clone QEMU waiting for its state)', setup: [], crash: [...UP, '--fast', '--mem', '192'] },
  { point: 'client-mid-up', during: '`up cq -n 2` (configs written, cluster lock held)', setup: [], crash: UP },
  { point: 'holder-mid-snapshot', during: '`snapshot cq warm` (every member paused, none saved yet)', setup: [UP], crash: ['snapshot', 'cq', 'warm'], after: holderCrashedMidSnapshot },
  { point: 'client-mid-snapshot', during: '`snapshot cq warm` (members saved and resumed, manifest written, folder not yet renamed)', setup: [UP], crash: ['snapshot', 'cq', 'warm'], after: clientCrashedMidSnapshot },
  { point: 'holder-mid-restore', during: '`up cf --from warm` (fork QEMU waiting for its saved state)', setup: [UP, ['snapshot', 'cq', 'warm']], crash: ['up', 'cf', '--from', 'warm'], cluster: 'cf', after: removeSource },
  // Members on the host root: a virtiofsd per member beside QEMU.
  { point: 'holder-after-file-server', during: '`up cq -n 2 --rootfs host` (virtiofsd serving, QEMU not started)', setup: [], crash: [...UP, '--rootfs', 'host'] },
  { point: 'holder-mid-boot', during: '`up cq -n 2 --rootfs host` (virtiofsd and QEMU running, guest booting)', setup: [], crash: [...UP, '--rootfs', 'host'] },
];

describe.skipIf(skip)('kill -9 at named points with real VMs', () => {
  it.each(SCENARIOS.map((s) => [`${s.point} during ${s.during}`, s] as const))('%s', async (_title, scenario) => {
    store = new Store(vmStore().home).ensure();
    const s = store;
    const env = { FLEETBOX_CRASH_AT: scenario.point };
    if (scenario.freshTemplate) dropTemplates(s, scenario.freshTemplate);
    await report.check(`SIGKILL at ${scenario.point} during ${scenario.during}`, `${RECOVERY_HELD}, no QEMU, namespace or tap left`, async () => {
      for (const args of scenario.setup) {
        const result = await cli(s, args, env, 120_000);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
        noteNetworks(s);
      }
      const crashed = await cli(s, scenario.crash, env, 120_000);
      noteNetworks(s);
      if (scenario.point.startsWith('client-')) expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      else if (scenario.crash[0] === 'up') expect(crashed.code, crashed.stdout).toBe(1);
      else if (scenario.crash[0] === 'snapshot') expect(crashed.code, crashed.stdout).not.toBe(0);
      await scenario.after?.(s);
      if (scenario.crash[0] === 'fault') {
        expect(crashed.code, crashed.stdout).not.toBe(0);
        // The record outlived its holder; the next look at the faults clears it, with the namespace.
        const listed = await cli(s, ['fault', 'ls', '--json'], {}, 60_000);
        expect(listed.stdout).toBe('[]\n');
        expect(existsSync(faultsPath(s, 'cq'))).toBe(false);
      }
      await expectRecovery(s, scenario.cluster ?? 'cq', 2, true, 'qemu');
      report.cover(scenario.point);
      report.count('crash injections');
    });
  }, 180_000);
});
