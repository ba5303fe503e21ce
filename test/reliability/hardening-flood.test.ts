import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startCluster } from '../../dist/index.js';
import { getStatus } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { destroyStore, eventually, tempStore } from '../helpers.js';
import { resources } from './harness.js';
import { assertNoLeftovers } from './leftovers.js';
import { PartReport } from './report.js';
import { exchange, type Exchange } from './wire.js';

const report = new PartReport('7c', 'Hardening: floods and hostile peers');
/** The holder's bind+ack deadline and cap (control-socket.ts). */
const HANDSHAKE_DEADLINE_MS = 10_000;
const MAX_HANDSHAKES = 64;
const FLOOD = 2_000;
/** Connections are opened this many at a time, so the listen backlog itself never overflows. */
const WAVE = 100;
/** A complete status request is answered within this, however loaded the machine. */
const REPLY_MS = 5_000;

let store: Store | undefined;
afterEach(async () => {
  if (store) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

interface Idle {
  socket: Socket;
  lines: string[];
  /** ms after connecting at which the holder closed it. */
  closedAfterMs: number | undefined;
}

/** Opens one connection that never sends a byte; notes what the holder says and when it hangs up. */
function idleConnection(path: string): Promise<Idle | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let text = '';
    let connectedAt = 0;
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('error', () => resolve(undefined));
    socket.once('connect', () => {
      connectedAt = Date.now();
      const idle: Idle = { socket, lines: [], closedAfterMs: undefined };
      socket.once('close', () => {
        idle.closedAfterMs = Date.now() - connectedAt;
        idle.lines = text.split('\n').filter(Boolean);
      });
      resolve(idle);
    });
  });
}

describe('floods', () => {
  it(`${FLOOD.toLocaleString('en')} idle control connections on a bound holder: the overflow gets busy, the rest are cut at the handshake deadline, members keep answering, fds return to baseline, the owner stays`, async () => {
    store = tempStore();
    const s = store;
    const cluster = await startCluster({ name: 'fl', members: 2, backend: 'process', home: s.home });
    const holder = liveHolder(s.pidfilePath('fl', 'fl-1'))?.pid as number;
    const baseFds = resources(holder).fds;
    let peakFds = baseFds;

    // Members are asked for their status all through the flood, one request every 50 ms.
    let flooding = true;
    const statuses: Promise<Exchange>[] = [];
    const prober = (async () => {
      for (let i = 0; flooding; i++) {
        statuses.push(exchange(s.memberSocketPath(i % 2 === 0 ? 'fl-1' : 'fl-2'), Buffer.from('{"cmd":"status"}\n'), false, REPLY_MS));
        peakFds = Math.max(peakFds, resources(holder).fds);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const idle: Idle[] = [];
    let refused = 0;
    const t0 = Date.now();
    try {
      for (let opened = 0; opened < FLOOD; opened += WAVE) {
        const wave = await Promise.all(Array.from({ length: WAVE }, () => idleConnection(s.controlSocketPath('fl'))));
        for (const c of wave) if (c) idle.push(c);
        else refused++;
      }
      const openedMs = Date.now() - t0;
      // Every connection is closed by the holder: the overflow at once, the rest at the deadline.
      const allClosed = await eventually(() => idle.every((c) => c.closedAfterMs !== undefined), HANDSHAKE_DEADLINE_MS + openedMs + 5_000);
      flooding = false;
      await prober;
      const replies = await Promise.all(statuses);
      const answered = replies.filter((r) => (JSON.parse(r.lines[0] ?? '{}') as { ok?: boolean }).ok === true).length;
      const busy = idle.filter((c) => c.lines.some((l) => (JSON.parse(l) as { error?: { code?: string } }).error?.code === 'busy'));
      const silent = idle.filter((c) => c.lines.length === 0);
      const lived = silent.map((c) => c.closedAfterMs ?? Infinity);
      report.figure('control flood: connections opened / refused at connect', `${idle.length} / ${refused} in ${openedMs} ms`);
      report.figure('control flood: answered busy and closed at once', busy.length);
      report.figure('control flood: idle connections cut after (min-max)', lived.length ? `${Math.min(...lived)}-${Math.max(...lived)} ms` : '-');
      report.figure('control flood: member status answered during it', `${answered}/${replies.length}`);
      report.figure('control flood: holder fds baseline / peak', `${baseFds} / ${peakFds}`);

      expect(allClosed, `${idle.filter((c) => c.closedAfterMs === undefined).length} connections still open`).toBe(true);
      expect(idle.length + refused).toBe(FLOOD);
      expect(silent.length, 'connections the holder held without a reply').toBeLessThanOrEqual(MAX_HANDSHAKES);
      expect(busy.length + silent.length).toBe(idle.length);
      expect(lived.every((ms) => ms >= HANDSHAKE_DEADLINE_MS - 100 && ms < HANDSHAKE_DEADLINE_MS + 5_000), JSON.stringify(lived)).toBe(true);
      expect(answered, 'status requests answered during the flood').toBe(replies.length);
      expect(replies.length).toBeGreaterThan(10);
      expect(peakFds - baseFds, 'descriptors the flood cost the holder').toBeLessThan(MAX_HANDSHAKES + 50);
      const fdsBack = await eventually(() => resources(holder).fds <= baseFds, 5_000);
      expect(fdsBack, `holder fds ${resources(holder).fds}, baseline ${baseFds}`).toBe(true);

      // The owner's acked connection is older than the deadline and was never cut: the holder
      // would have stopped every member and exited.
      expect(Date.now() - t0).toBeGreaterThan(HANDSHAKE_DEADLINE_MS);
      expect(isProcessAlive(holder)).toBe(true);
      for (const name of ['fl-1', 'fl-2']) expect((await getStatus(s, { cluster: 'fl', name })).state, name).toBe('running');
      report.add(
        `${FLOOD.toLocaleString('en')} idle connections on a bound holder's control socket`,
        `at most ${MAX_HANDSHAKES} held, cut at the ${HANDSHAKE_DEADLINE_MS / 1000} s handshake deadline, the rest answered busy; every member status answered; fds back to baseline; the owner kept`,
        FLOOD,
        true,
      );
    } finally {
      flooding = false;
      await prober;
      for (const c of idle) c.socket.destroy();
    }
    await cluster.destroy();
    await assertNoLeftovers(s);
  }, 60_000);
});
