import { readdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDSHAKE_DEADLINE_MS } from '../../dist/holder/control-socket.js';
import { getStatus } from '../../dist/control/status.js';
import { removeMembers } from '../../dist/control/remove.js';
import { up } from '../../dist/control/up.js';
import type { Store } from '../../dist/store/layout.js';
import { listMembers } from '../../dist/store/members.js';
import { isSameProcess, processStartTime } from '../../dist/host/proc.js';
import { tempStore } from '../helpers.js';
import { resources } from './harness.js';
import { assertNoLeftovers } from './leftovers.js';
import { PartReport } from './report.js';
import { changesState, exchange, judge, trickle, wireCase, type WireCase } from './wire.js';

const report = new PartReport('2', 'Wire fuzzing: property-based requests against a live holder');
const CLUSTER = 'fz';
const MEMBERS = ['fz-1', 'fz-2', 'fz-3'];
const BATCHES = 100;
const BATCH_SIZE = 100;
/** The holder's whole-request deadline on member sockets (member-socket.ts). */
const REQUEST_DEADLINE_MS = 10_000;
/** A complete request is answered within this, however loaded the machine. */
const REPLY_MS = 5_000;
const HELD = 'every reply well-formed with the right code (or the connection closed); after each batch the holder answers `status` and no member changed state';

let store: Store;
let holder: { pid: number; startTime: string };
let baseline: Map<string, { pid: number | null; since: string }>;
let runEntries: string[];
let baseFds: number;

beforeAll(async () => {
  store = tempStore();
  const result = await up(store, { names: [CLUSTER], count: MEMBERS.length, spec: { backend: 'process' } });
  const pid = result.spawned.get(CLUSTER)?.pid as number;
  holder = { pid, startTime: processStartTime(pid) as string };
  baseline = new Map(result.members.map((m) => [m.name, { pid: m.pid, since: m.since }]));
  runEntries = readdirSync(store.runDir).sort();
  baseFds = resources(pid).fds;
});

afterAll(async () => {
  try {
    await removeMembers(store, listMembers(store));
    await assertNoLeftovers(store);
  } finally {
    rmSync(store.home, { recursive: true, force: true });
    await report.flush();
  }
});

/** The holder still serves `status` correctly and nothing about any member changed. */
async function expectUnchanged(): Promise<void> {
  expect(isSameProcess(holder.pid, holder.startTime), 'the holder died').toBe(true);
  expect(listMembers(store).map((m) => m.name)).toEqual(MEMBERS);
  for (const name of MEMBERS) {
    const view = await getStatus(store, { cluster: CLUSTER, name });
    expect([view.source, view.state, view.pid, view.since], name).toEqual(['holder', 'running', baseline.get(name)?.pid, baseline.get(name)?.since]);
  }
  expect(readdirSync(store.runDir).sort()).toEqual(runEntries);
}

function pathFor(c: WireCase, i: number): { path: string; member: string } {
  const member = MEMBERS[i % MEMBERS.length] as string;
  return { path: c.target === 'member' ? store.memberSocketPath(member) : store.controlSocketPath(CLUSTER), member };
}

describe('wire fuzzing against a live holder', () => {
  it(`${BATCHES * BATCH_SIZE} generated cases in batches of ${BATCH_SIZE} concurrent connections, with slow-loris peers alongside`, async () => {
    // slow-loris peers run alongside the whole property run
    const loris = Promise.all([
      ...MEMBERS.flatMap((m) => [0, 1].map(() => trickle(store.memberSocketPath(m), Buffer.from('{"cmd":"status"}\n'), 100, REPLY_MS, 30_000))),
      ...[0, 1, 2].map(() => trickle(store.controlSocketPath(CLUSTER), Buffer.from('{"cmd":"bind","version":"1"}\n'), 100, REPLY_MS, 30_000)),
      // a peer that never finishes its line must be cut off by the holder's request deadline (10 s)
      ...MEMBERS.map((m) => trickle(store.memberSocketPath(m), Buffer.alloc(300, 'a'), 100, REPLY_MS, 25_000)),
    ]);
    const kinds = new Map<string, number>();
    const failures: string[] = [];
    const running = [...MEMBERS];
    const arbitrary = fc.array(
      wireCase(CLUSTER, MEMBERS).filter((c) => !changesState(c.payload, CLUSTER, running)),
      { minLength: BATCH_SIZE, maxLength: BATCH_SIZE },
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async (cases) => {
        const verdicts = await Promise.all(
          cases.map(async (c, i) => {
            const { path, member } = pathFor(c, i);
            // the control socket keeps a connection for further lines; only our EOF ends it
            const result = await exchange(path, c.payload, c.end || c.target === 'control');
            kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
            return { c, verdict: judge(c, result, member) };
          }),
        );
        const bad = verdicts.filter((v) => !v.verdict.ok);
        for (const { c, verdict } of bad) {
          if (!verdict.ok) failures.push(`${c.kind} → ${c.target}: ${verdict.why}; payload ${JSON.stringify(c.payload.subarray(0, 120).toString('latin1'))}`);
        }
        expect(bad.map((b) => (b.verdict.ok ? '' : `${b.c.kind}: ${b.verdict.why}`))).toEqual([]);
        await expectUnchanged();
      }),
      {
        numRuns: BATCHES,
        // no shrinking of 100-case batches; the failures say what broke, the seed replays it
        endOnFailure: true,
        reporter: (details) => {
          if (details.failed) {
            throw new Error(`wire fuzz failed (seed ${details.seed}, replay with it): ${failures.slice(0, 10).join('\n') || String(details.errorInstance)}`);
          }
        },
      },
    ).finally(() => loris);
    const total = [...kinds.values()].reduce((a, b) => a + b, 0);
    for (const [kind, runs] of [...kinds].sort()) report.add(kind, HELD, runs, failures.length === 0);
    report.count('fuzz cases', total);
    expect(failures).toEqual([]);
    expect(total).toBeGreaterThanOrEqual(10_000);

    const trickles = await loris;
    const [statuses, binds, endless] = [trickles.slice(0, 6), trickles.slice(6, 9), trickles.slice(9)];
    // The member socket's deadline covers the whole request: a status this process managed to
    // send inside it is answered, one it could not (its own timers starved) is cut off unanswered.
    for (const r of statuses) {
      expect(r.closed, JSON.stringify(r)).toBe(true);
      if (r.sentMs !== undefined && r.sentMs < REQUEST_DEADLINE_MS - 1_000) {
        expect(JSON.parse(r.lines[0] ?? '{}'), JSON.stringify(r)).toMatchObject({ ok: true, status: { state: 'running' } });
      } else if (r.sentMs === undefined || r.sentMs > REQUEST_DEADLINE_MS) {
        expect(r.lines, JSON.stringify(r)).toEqual([]);
      }
    }
    // The control socket gives a connection HANDSHAKE_DEADLINE_MS for its bind: a bind this
    // process sent inside it is answered (busy: the cluster has its owner), one it could not send
    // in time (its own timers starved: 29 bytes took 11 s under load) is cut off unanswered.
    for (const r of binds) {
      if (r.sentMs !== undefined && r.sentMs < HANDSHAKE_DEADLINE_MS - 1_000) {
        expect(JSON.parse(r.lines[0] ?? '{}'), JSON.stringify(r)).toMatchObject({ ok: false, error: { code: 'busy' } });
      } else if (r.sentMs === undefined || r.sentMs > HANDSHAKE_DEADLINE_MS) {
        expect(r.closed, JSON.stringify(r)).toBe(true);
        expect(r.lines, JSON.stringify(r)).toEqual([]);
        expect(r.ms, JSON.stringify(r)).toBeGreaterThanOrEqual(HANDSHAKE_DEADLINE_MS - 100);
      }
    }
    const lagMs = Math.max(...trickles.map((r) => r.maxGapMs));
    report.figure('slow-loris: longest gap between two bytes this test meant to send 100 ms apart', `${lagMs} ms`);
    report.figure('slow-loris: binds (29 bytes) fully sent after', binds.map((r) => `${r.sentMs} ms`).join(', '));
    report.add('slow-loris: a request one byte per 100 ms (member and control sockets)', 'answered correctly once complete', 9, true);
    // Closed by the holder (not by our own 25 s limit), and not before its deadline.
    const cutOff = endless.every((r) => r.closed && r.ms >= REQUEST_DEADLINE_MS - 100 && r.ms < 25_000);
    report.figure('slow-loris: endless lines cut off after', endless.map((r) => `${r.ms} ms`).join(', '));
    report.add('slow-loris: an endless line one byte per 100 ms', 'cut off by the holder at its 10 s request deadline', 3, cutOff);
    expect(endless.map((r) => r.closed && r.ms >= REQUEST_DEADLINE_MS - 100 && r.ms < 25_000), JSON.stringify(endless)).toEqual(endless.map(() => true));
    await expectUnchanged();
  }, 120_000);

  it('1,000 connections open at once (plus 200 idle control connections): every status answered, nothing changed, fds back to baseline', async () => {
    const idle: Socket[] = await Promise.all(
      Array.from({ length: 200 }, () => new Promise<Socket>((resolve) => {
        const socket = connect(store.controlSocketPath(CLUSTER));
        socket.on('error', () => undefined);
        socket.once('connect', () => resolve(socket));
      })),
    );
    const results = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => exchange(store.memberSocketPath(MEMBERS[i % 3] as string), Buffer.from('{"cmd":"status"}\n'), false, 20_000)),
    );
    idle.forEach((s) => s.destroy());
    const answered = results.filter((r) => r.closed && (JSON.parse(r.lines[0] ?? '{}') as { ok?: boolean }).ok === true).length;
    report.add('1,000 concurrent connections + 200 idle control connections', 'every status answered; holder fds back to baseline', 1_200, answered === 1_000);
    expect(answered).toBe(1_000);
    await expectUnchanged();
    // every connection the holder accepted is closed again: no descriptor leak
    const deadline = Date.now() + 5_000;
    while (resources(holder.pid).fds > baseFds && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const fds = resources(holder.pid).fds;
    report.figure('holder fds before/after the fuzz', `${baseFds} / ${fds}`);
    expect(fds).toBeLessThanOrEqual(baseFds);
  }, 60_000);
});
