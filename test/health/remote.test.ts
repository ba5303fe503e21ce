import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../dist/dashboard/server.js';
import { collectRemote, fleetUrl } from '../../dist/health/remote.js';
import { renderFleet, renderMember } from '../../dist/health/render-text.js';
import { classifyMember, rollup } from '../../dist/health/rollup.js';
import { FleetSnapshotSchema, type FleetSnapshot } from '../../dist/protocol/health.js';
import { CLI } from '../helpers.js';

const run = promisify(execFile);

function fleetOf(cluster: string, count: number, state: 'running' | 'error' = 'running'): FleetSnapshot {
  const now = Date.now();
  const members = Array.from({ length: count }, (_, i) =>
    classifyMember(
      {
        ref: { cluster, name: `${cluster}-${i + 1}` },
        config: { backend: 'process', createdAt: new Date(now - 60_000).toISOString(), port: 7000 },
        probe: { ok: true, ms: 0.2, status: { name: `${cluster}-${i + 1}`, pid: 100 + i, running: state === 'running', ip: `127.5.5.${i + 1}`, state, since: new Date(now - 60_000).toISOString(), ...(state === 'error' && { error: 'boom' }) } },
        disk: undefined,
        holder: { pid: 99, procState: 'S' },
        heartbeat: { at: new Date(now).toISOString(), staleAfterMs: 10_000 },
        checks: [{ name: 'port', status: 'pass', detail: 'ok', durationMs: 1, at: new Date(now).toISOString() }],
        timeoutMs: 2_000,
      },
      { now },
    ),
  );
  return rollup({ members, clusters: [{ name: cluster, status: 'green', backend: 'process', members: count, running: count, holder: null, checks: [] }], now });
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function dashboard(snapshot: FleetSnapshot, token?: string): Promise<Dashboard> {
  const d = await startDashboard({ port: 0, snapshot: async () => snapshot, ...(token && { token }) });
  closers.push(() => d.close());
  return d;
}

async function tinyServer(handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return (server.address() as AddressInfo).port;
}

/** A port on which nothing listens: bound once, then closed. */
async function deadPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('status --hosts', () => {
  it('one host down and one answering garbage: the good host\'s rows plus two warnings', async () => {
    const good = await dashboard(fleetOf('web', 2));
    const garbage = await tinyServer((_req, res) => res.end('{"hello": "not a snapshot"}'));
    const down = await deadPort();
    const hosts = [`127.0.0.1:${good.port}`, `127.0.0.1:${down}`, `127.0.0.1:${garbage}`];
    const t0 = Date.now();
    const merged = FleetSnapshotSchema.parse(await collectRemote(hosts, { timeoutMs: 1_000 }));
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(merged.members.map((m) => [m.host, m.name])).toEqual([[hosts[0], 'web-1'], [hosts[0], 'web-2']]);
    expect(merged.clusters.map((c) => c.host)).toEqual([hosts[0]]);
    expect(merged.warnings.map((w) => w.subject).sort()).toEqual([hosts[1], hosts[2]].sort());
    expect(merged.warnings.find((w) => w.subject === hosts[1])?.message).toMatch(/did not answer: ECONNREFUSED/);
    expect(merged.warnings.find((w) => w.subject === hosts[2])?.message).toMatch(/not a fleetbox snapshot/);
    expect(merged.summary.status).toBe('red');
    expect(merged.summary.issues.map((i) => i.kind).sort()).toEqual(['host_bad_answer', 'host_unreachable']);
    expect(merged.hosts?.map((h) => h.ok)).toEqual([true, false, false]);
  });

  it('a host that never answers costs its timeout, not more; the others still come back', async () => {
    const good = await dashboard(fleetOf('api', 1));
    const silent = await tinyServer(() => {});
    const t0 = Date.now();
    const merged = await collectRemote([`127.0.0.1:${good.port}`, `127.0.0.1:${silent}`], { timeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(merged.members).toHaveLength(1);
    expect(merged.warnings[0]?.message).toMatch(/no answer within/);
  });

  it('tags rows with their host, re-rolls them up, and prefixes actions with the host', async () => {
    const a = await dashboard(fleetOf('web', 1));
    const b = await dashboard(fleetOf('db', 1, 'error'));
    const merged = await collectRemote([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], { timeoutMs: 1_000 });
    expect(merged.summary.status).toBe('red');
    expect(merged.members[0]).toMatchObject({ name: 'db-1', host: `127.0.0.1:${b.port}`, status: 'red' });
    expect(merged.summary.suggestedNextAction).toBe(`on 127.0.0.1:${b.port}: fleetbox logs db-1, then fleetbox up db-1`);
    expect(merged.hosts?.every((h) => h.ok && h.skewMs !== null && Math.abs(h.skewMs) < 200)).toBe(true);
  });

  it('estimates clock skew from three samples and warns above the threshold', async () => {
    const body = JSON.stringify(fleetOf('skew', 1));
    let requests = 0;
    const port = await tinyServer((req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json', 'x-fleetbox-time': String(Date.now() + 2_000) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    const merged = await collectRemote([`127.0.0.1:${port}`], { timeoutMs: 1_000, skewWarnMs: 500 });
    expect(requests).toBe(3);
    const skew = merged.hosts?.[0]?.skewMs ?? 0;
    expect(skew).toBeGreaterThan(1_800);
    expect(skew).toBeLessThan(2_200);
    expect(merged.summary.issues[0]).toMatchObject({ level: 'amber', kind: 'clock_skew' });
    expect(merged.warnings[0]?.message).toMatch(/clock is \d+ ms ahead of this machine/);
  });

  it('sends the bearer token; a wrong one is a warning that says so', async () => {
    const d = await dashboard(fleetOf('sec', 1), 'tok3n');
    expect((await collectRemote([`127.0.0.1:${d.port}`], { timeoutMs: 1_000, token: 'tok3n' })).members).toHaveLength(1);
    const refused = await collectRemote([`127.0.0.1:${d.port}`], { timeoutMs: 1_000, token: 'nope' });
    expect(refused.warnings[0]?.message).toMatch(/HTTP 401 \(wrong or missing --token\?\)/);
  });

  it('host:port and URLs both work; nonsense is a usage error', () => {
    expect(fleetUrl('hostA:7070', false).href).toBe('http://hosta:7070/api/fleet');
    expect(fleetUrl('hostA:7070', true).href).toBe('https://hosta:7070/api/fleet');
    expect(fleetUrl('https://x:1/whatever?y', false).href).toBe('https://x:1/api/fleet');
    expect(() => fleetUrl('a b:c', false)).toThrow(/not host:port/);
  });

  it('the CLI: --hosts merges, prints warnings on stderr and keeps stdout pure JSON', async () => {
    const good = await dashboard(fleetOf('cli', 2));
    const down = await deadPort();
    const result = await run(CLI, ['status', '--hosts', `127.0.0.1:${good.port},127.0.0.1:${down}`, '--json', '--timeout', '1'], { env: { ...process.env, FLEETBOX_HOME: '/nonexistent-fleetbox-home' } });
    const merged = FleetSnapshotSchema.parse(JSON.parse(result.stdout));
    expect(merged.members).toHaveLength(2);
    expect(result.stderr).toMatch(/^warning: 127\.0\.0\.1:\d+ did not answer/m);
    const human = await run(CLI, ['status', '--hosts', `127.0.0.1:${good.port}`], { env: process.env });
    expect(human.stdout).toMatch(/^HOST\s+MEMBER\s+STATUS/m);
    expect(human.stdout).toMatch(/^HOST\s+ANSWER\s+CLOCK SKEW\s+RTT/m);
  });

  it('a remote\'s escape sequences and control characters never reach the terminal', async () => {
    const evil = fleetOf('web', 1, 'error');
    const member = evil.members[0];
    if (!member) throw new Error('no member');
    // What the hostile tester's fake remote sent: a new window title, a cleared screen, a fake ALL GREEN.
    member.name = 'web-1\x1b]0;pwned\x07';
    member.error = 'boom\x1b[2J\x1b[H\n\x1b[32mALL GREEN\x1b[0m\x9b2J\x00\x7f';
    member.problem = 'down\x1bc\r\x1b[1A';
    member.ip = '127.5.5.1\x1bP+q\x1b\\';
    const check = member.checks[0];
    if (check) check.detail = '\x1b]8;;http://attacker.example\x1b\\ok\x1b]8;;\x1b\\';
    evil.warnings = [{ subject: 'w\x07', message: 'disk\x1b]52;c;ZXZpbA==\x07 full\x85' }];
    const d = await dashboard(evil);
    const host = `127.0.0.1:${d.port}`;
    const merged = await collectRemote([host], { timeoutMs: 1_000 });
    /** Control characters of `text`, line feeds allowed only between rendered lines. */
    const controls = (text: string, newline: boolean) =>
      [...text].filter((ch) => {
        const code = ch.charCodeAt(0);
        return (code < 0x20 && !(newline && ch === '\n')) || (code >= 0x7f && code <= 0x9f);
      });
    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') strings.push(v);
      else if (v && typeof v === 'object') {
        for (const [k, item] of Object.entries(v)) {
          strings.push(k);
          walk(item);
        }
      }
    };
    walk(merged);
    expect(strings.filter((text) => controls(text, false).length > 0)).toEqual([]);
    expect(merged.members[0]).toMatchObject({ name: 'web-1', error: 'boom ALL GREEN2J', problem: 'down ', ip: '127.5.5.1' });
    expect(merged.warnings.map((w) => w.message)).toContain(`${host}: disk full`);
    const text = renderFleet(merged, { colour: false }) + merged.members.map((m) => renderMember(m, { colour: false })).join('');
    expect(controls(text, true)).toEqual([]);
    // The CLI, as an operator sees it (stdout and the warnings on stderr).
    const human = await run(CLI, ['status', '--hosts', host], { env: { ...process.env, FLEETBOX_HOME: '/nonexistent-fleetbox-home' } }).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    expect(human.stdout).toMatch(/web-1/);
    expect(controls(human.stdout + human.stderr, true)).toEqual([]);
  });
});
