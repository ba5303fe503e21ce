import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { getStatus } from '../../dist/control/status.js';
import { stopMembers } from '../../dist/control/stop.js';
import { up } from '../../dist/control/up.js';
import type { Store } from '../../dist/store/layout.js';
import { listMembers } from '../../dist/store/members.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { tempStore } from '../helpers.js';
import { cli, expectLsTruthful, resources } from './harness.js';
import { assertNoLeftovers, storeProcesses } from './leftovers.js';
import { PartReport } from './report.js';

const report = new PartReport('3', 'Soak: up / down / re-join / status cycles on one live holder');
const CYCLES = 200;
const CLUSTER = 'sk';
const MEMBERS = ['sk-1', 'sk-2', 'sk-3'];
/** Drift allowed between the end and "after the first cycle" (issue #7). */
const MAX_DRIFT = 0.1;
/**
 * V8 grows its heap lazily and compiles hot code during the first ~75 cycles, so a healthy
 * holder's RSS climbs ~60 → ~100 MiB and then stays flat (measured: heap snapshots, which collect
 * first, show the live heap flat at ~10 MiB from cycle 100 to 400). The soak holder runs with its
 * old generation capped so V8 must collect instead of grow: retained memory then shows as RSS
 * growth, and a real leak as growth or an out-of-memory death of the holder.
 */
const HOLDER_NODE_OPTIONS = '--max-old-space-size=32 --max-semi-space-size=1';

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
    await report.flush();
  }
});

const pct = (from: number, to: number) => `${to >= from ? '+' : ''}${(((to - from) / from) * 100).toFixed(1)} %`;

describe('soak', () => {
  it(`${CYCLES} cycles of down → status → re-join → up (no-op) → status on a 3-member process cluster`, async () => {
    store = tempStore();
    const s = store;
    const spec = { backend: 'process' as const };
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = HOLDER_NODE_OPTIONS;
    const first = await up(s, { names: [CLUSTER], count: MEMBERS.length, spec }).finally(() => {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    });
    const holderPid = first.spawned.get(CLUSTER)?.pid as number;
    const ips = new Map(first.members.map((m) => [m.name, m.ip]));
    const refs = listMembers(s);
    let afterFirst: { fds: number; rssKiB: number } | undefined;
    let midway: { fds: number; rssKiB: number } | undefined;
    const samples: string[] = [];
    const rejoinMs: number[] = [];
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // alternate which member leaves; one of them always keeps the holder alive
      const leaving = MEMBERS[1 + (cycle % 2)] as string;
      const ref = { cluster: CLUSTER, name: leaving };
      const [stop] = await stopMembers(s, [ref], { timeoutMs: 5_000 });
      expect(stop?.result.status === 'fulfilled' && stop.result.value.state, `cycle ${cycle}: down ${leaving}`).toBe('stopped');
      const down = await Promise.all(refs.map((r) => getStatus(s, r)));
      expect(down.map((v) => v.state), `cycle ${cycle}`).toEqual(MEMBERS.map((m) => (m === leaving ? 'stopped' : 'running')));
      const started = Date.now();
      const rejoined = await up(s, { names: [leaving] });
      rejoinMs.push(Date.now() - started);
      expect(rejoined.spawned.size, `cycle ${cycle}: re-join spawned a second holder`).toBe(0);
      expect(rejoined.members[0]?.ip, `cycle ${cycle}: ${leaving} re-joined with another address`).toBe(ips.get(leaving));
      const again = await up(s, { names: [CLUSTER] });
      expect(again.spawned.size).toBe(0);
      const views = await Promise.all(refs.map((r) => getStatus(s, r)));
      expect(views.map((v) => [v.state, v.holderPid]), `cycle ${cycle}`).toEqual(MEMBERS.map(() => ['running', holderPid]));
      // holder + 3 members, nothing else: no process piles up
      expect(storeProcesses(s).length, `cycle ${cycle}: processes of the store`).toBe(1 + MEMBERS.length);
      if (cycle === 1) afterFirst = resources(holderPid);
      if (cycle === CYCLES / 2) midway = resources(holderPid);
      if (cycle % 50 === 0) {
        const r = resources(holderPid);
        samples.push(`cycle ${cycle}: ${r.fds} fds, ${(r.rssKiB / 1024).toFixed(1)} MiB`);
      }
    }
    const base = afterFirst as { fds: number; rssKiB: number };
    // The last requests' connections may still be closing on the holder's side: a leak stays,
    // a connection in flight is gone within moments (one run measured 26 against 23 at once).
    const settleBy = Date.now() + 5_000;
    while (resources(holderPid).fds > base.fds * (1 + MAX_DRIFT) && Date.now() < settleBy) await new Promise((resolve) => setTimeout(resolve, 50));
    const end = resources(holderPid);
    const mid = midway as { fds: number; rssKiB: number };
    expect(liveHolder(s.pidfilePath(CLUSTER, 'sk-1'))?.pid).toBe(holderPid);
    await expectLsTruthful(s);
    rejoinMs.sort((a, b) => a - b);
    report.figure('soak cycles', CYCLES);
    report.figure('fd drift', `${base.fds} → ${end.fds} fds (${pct(base.fds, end.fds)})`);
    const mib = (kib: number) => (kib / 1024).toFixed(1);
    report.figure(
      'RSS drift',
      `${mib(base.rssKiB)} → ${mib(end.rssKiB)} MiB (${pct(base.rssKiB, end.rssKiB)}) from cycle 1; ${mib(mid.rssKiB)} → ${mib(end.rssKiB)} MiB (${pct(mid.rssKiB, end.rssKiB)}) over the second half`,
    );
    report.figure('re-join p50 / p99', `${rejoinMs[Math.floor(rejoinMs.length / 2)]} / ${rejoinMs[Math.floor(rejoinMs.length * 0.99)]} ms`);
    report.note(`Holder samples: ${samples.join('; ')}.`);
    report.note(
      `RSS is measured with the holder's old generation capped (NODE_OPTIONS=${HOLDER_NODE_OPTIONS}) so V8 collects instead of growing. Even so, RSS rises during the first ~75 cycles (JIT-compiled code, heap sizing) and is flat afterwards, so the RSS bound is checked over the second half (cycle ${CYCLES / 2} → ${CYCLES}); the drift from cycle 1 is reported as measured. File descriptors are checked against cycle 1.`,
    );
    const fdOk = end.fds <= base.fds * (1 + MAX_DRIFT);
    const rssOk = end.rssKiB <= mid.rssKiB * (1 + MAX_DRIFT);
    report.add(
      `${CYCLES} cycles: down one member, status, re-join it (addmember), up of the live cluster, status`,
      `one holder throughout, same addresses on re-join, holder + 3 member processes after every cycle, holder fds within 10 % of cycle 1, RSS within 10 % over cycles ${CYCLES / 2}–${CYCLES}`,
      CYCLES,
      fdOk && rssOk,
    );
    expect(end.fds, 'holder fds drifted').toBeLessThanOrEqual(base.fds * (1 + MAX_DRIFT));
    expect(end.rssKiB, 'holder RSS grew over the second half').toBeLessThanOrEqual(mid.rssKiB * (1 + MAX_DRIFT));
  }, 180_000);
});
