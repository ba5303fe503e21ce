import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { getStatus } from '../../dist/control/status.js';
import { stopMembers } from '../../dist/control/stop.js';
import { up } from '../../dist/control/up.js';
import { Store } from '../../dist/store/layout.js';
import { listMembers } from '../../dist/store/members.js';
import { cannotBootVms, reportSkip, vmStore } from '../qemu/harness.js';
import { cli, expectLsTruthful, resources } from './harness.js';
import { assertNoLeftovers, noteNetworks, storeProcesses } from './leftovers.js';
import { PartReport } from './report.js';

const report = new PartReport('3q', 'Soak: down / re-join / status cycles on a qemu cluster');
const CYCLES = 20;
const CLUSTER = 'sq';
const MEMBERS = ['sq-1', 'sq-2'];
const skip = reportSkip('the qemu soak', cannotBootVms());

let store: Store | undefined;
afterAll(async () => {
  try {
    if (store) {
      const rm = await cli(store, ['rm', '--all', '--yes']);
      expect(rm.code, rm.stderr).toBe(0);
      await assertNoLeftovers(store);
    }
  } finally {
    if (store) rmSync(store.home, { recursive: true, force: true });
    if (!skip) await report.flush();
  }
});

describe.skipIf(skip)('qemu soak', () => {
  it(`${CYCLES} cycles of down → status → re-join → status on a 2-member qemu cluster`, async () => {
    store = new Store(vmStore().home).ensure();
    const s = store;
    const first = await up(s, { names: [CLUSTER], count: MEMBERS.length });
    noteNetworks(s);
    const holderPid = first.spawned.get(CLUSTER)?.pid as number;
    const ips = new Map(first.members.map((m) => [m.name, m.ip]));
    const refs = listMembers(s);
    let afterFirst: { fds: number; rssKiB: number } | undefined;
    const rejoinMs: number[] = [];
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const leaving = 'sq-2';
      const [stop] = await stopMembers(s, [{ cluster: CLUSTER, name: leaving }], { timeoutMs: 10_000 });
      expect(stop?.result.status === 'fulfilled' && stop.result.value.state, `cycle ${cycle}: down`).toBe('stopped');
      const down = await Promise.all(refs.map((r) => getStatus(s, r)));
      expect(down.map((v) => v.state), `cycle ${cycle}`).toEqual(['running', 'stopped']);
      const started = Date.now();
      const rejoined = await up(s, { names: [leaving] });
      rejoinMs.push(Date.now() - started);
      expect(rejoined.spawned.size, `cycle ${cycle}: a second holder`).toBe(0);
      expect(rejoined.members[0]?.ip, `cycle ${cycle}: another address`).toBe(ips.get(leaving));
      const views = await Promise.all(refs.map((r) => getStatus(s, r)));
      expect(views.map((v) => [v.state, v.holderPid]), `cycle ${cycle}`).toEqual(MEMBERS.map(() => ['running', holderPid]));
      // holder, a QEMU and a shared SSH connection per member, the cluster's dnsmasq, at most a
      // namespace connector: nothing piles up from cycle to cycle
      expect(storeProcesses(s).length, `cycle ${cycle}: processes of the store`).toBeLessThanOrEqual(1 + 2 * MEMBERS.length + 2);
      if (cycle === 1) afterFirst = resources(holderPid);
    }
    const end = resources(holderPid);
    const base = afterFirst as { fds: number; rssKiB: number };
    await expectLsTruthful(s);
    rejoinMs.sort((a, b) => a - b);
    const pct = (from: number, to: number) => `${to >= from ? '+' : ''}${(((to - from) / from) * 100).toFixed(1)} %`;
    report.figure('qemu soak cycles', CYCLES);
    report.figure('qemu soak fd drift', `${base.fds} → ${end.fds} fds (${pct(base.fds, end.fds)})`);
    report.figure('qemu soak holder RSS', `${(base.rssKiB / 1024).toFixed(1)} → ${(end.rssKiB / 1024).toFixed(1)} MiB (${pct(base.rssKiB, end.rssKiB)})`);
    report.figure('qemu re-join p50', `${rejoinMs[Math.floor(rejoinMs.length / 2)]} ms`);
    const ok = end.fds <= base.fds * 1.1;
    report.add(`${CYCLES} cycles: power one VM off, status, re-join it to the live network, status`, 'one holder, same address on every re-join, no process piles up, holder fds within 10 % of cycle 1', CYCLES, ok);
    expect(end.fds, 'holder fds drifted').toBeLessThanOrEqual(base.fds * 1.1);
  }, 300_000);
});
