import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rollup } from '../../dist/health/rollup.js';
import { REQUEST_TIMEOUT_MS, startDashboard, type Dashboard, type DashboardOptions } from '../../dist/dashboard/server.js';

const open: Dashboard[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(open.splice(0).map((d) => d.close()));
});

async function serve(options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  const dashboard = await startDashboard({ port: 0, snapshot: async () => rollup({ members: [], clusters: [], now: Date.now() }), ...options });
  open.push(dashboard);
  return dashboard;
}

/** One request with exactly this Host header (or none); resolves with the status and body. */
function withHost(port: number, host: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('end', () => resolve({ status: Number(data.split(' ')[1]), body: data.split('\r\n\r\n')[1] ?? '' }));
    const version = host === undefined ? 'HTTP/1.0' : 'HTTP/1.1';
    socket.write(`GET /api/fleet ${version}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`);
  });
}

interface Loris {
  socket: Socket;
  /** ms after connecting at which the server closed it. */
  closedAfterMs: number | undefined;
}

/** A connection that sends a request line, then one header byte every `everyMs`, never finishing. */
function loris(port: number): Promise<Loris> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const started = Date.now();
      const l: Loris = { socket, closedAfterMs: undefined };
      socket.once('close', () => (l.closedAfterMs = Date.now() - started));
      socket.write(`GET /api/fleet HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
      resolve(l);
    });
    socket.once('error', reject);
  });
}

/** Resolves once `check` holds, or with false at the deadline. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

describe('the dashboard against hostile clients', () => {
  it('300 slow-loris connections are cut at the request timeout while a normal request is still answered', async () => {
    const d = await serve();
    const slow = await Promise.all(Array.from({ length: 300 }, () => loris(d.port)));
    // Each sends a byte every 500 ms: an idle timer alone would never fire.
    const drip = setInterval(() => {
      for (const l of slow) if (l.closedAfterMs === undefined && l.socket.writable) l.socket.write('a');
    }, 500);
    try {
      const answer = await fetch(`${d.url}/api/fleet`, { signal: AbortSignal.timeout(5_000) });
      expect(answer.status).toBe(200);
      const margin = 4_000;
      const cut = await until(() => slow.every((l) => l.closedAfterMs !== undefined), REQUEST_TIMEOUT_MS + margin);
      const lived = slow.map((l) => l.closedAfterMs ?? Infinity);
      expect(cut, `${lived.filter((ms) => ms === Infinity).length} of 300 still open after ${REQUEST_TIMEOUT_MS + margin} ms`).toBe(true);
      expect(Math.min(...lived)).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect((await fetch(`${d.url}/api/fleet`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
    } finally {
      clearInterval(drip);
    }
  }, 30_000);

  it('beyond its connection cap, new connections are closed at once; once they go, it answers again', async () => {
    const d = await serve({ maxConnections: 20 });
    const held = await Promise.all(Array.from({ length: 40 }, () => loris(d.port)));
    const overflow = await until(() => held.filter((l) => l.closedAfterMs !== undefined).length >= 20, 2_000);
    expect(overflow, `${held.filter((l) => l.closedAfterMs !== undefined).length} of 40 closed`).toBe(true);
    expect(held.filter((l) => l.closedAfterMs === undefined).length).toBe(20);
    for (const l of held) l.socket.destroy();
    await until(() => held.every((l) => l.closedAfterMs !== undefined), 2_000);
    // The server learns of the closes asynchronously: ask until it answers, with a deadline.
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = await fetch(`${d.url}/api/fleet`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0);
    }
    expect(status).toBe(200);
  });

  it('answers only Host names of this machine on its own port (DNS rebinding); --allow-host adds names', async () => {
    const d = await serve({ allowHosts: ['dash.example'] });
    const p = d.port;
    for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `LOCALHOST:${p}`, `[::1]:${p}`, `dash.example:${p}`]) {
      expect((await withHost(p, host)).status, host).toBe(200);
    }
    for (const host of [`attacker.example:${p}`, 'attacker.example', `127.0.0.1:${p + 1}`, '127.0.0.1', `localhost.attacker.example:${p}`, `[::2]:${p}`, `127.0.0.1:${p}@x`, undefined]) {
      const res = await withHost(p, host);
      expect(res.status, String(host)).toBe(421);
      expect(res.body, String(host)).toBe('misdirected request\n');
    }
  });
});
