import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rollup } from '../../dist/health/rollup.js';
import { FleetSnapshotSchema, type FleetSnapshot } from '../../dist/protocol/health.js';
import { startDashboard, type Dashboard, type DashboardOptions } from '../../dist/dashboard/server.js';
import { escapeHtml } from '../../dist/dashboard/html.js';
import { scratch } from '../scratch.js';

const REQUIRED = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

function fakeSnapshot(): FleetSnapshot {
  return rollup({ members: [], clusters: [], now: Date.now() });
}

const open: Dashboard[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

async function serve(options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  const dashboard = await startDashboard({ port: 0, snapshot: async () => fakeSnapshot(), ...options });
  open.push(dashboard);
  return dashboard;
}

/** A raw HTTP/1.1 exchange, so paths reach the server exactly as written (no client normalisation). */
function raw(port: number, requestLine: string, headers: string[] = []): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const parsed: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        parsed[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers: parsed, body });
    });
    socket.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  });
}

function expectSecurityHeaders(headers: Record<string, string>): void {
  expect(headers).toMatchObject(REQUIRED);
  expect(headers['content-security-policy']).toMatch(/default-src 'none'/);
  expect(headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  expect(headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
}

describe('dashboard', () => {
  it('GET /api/fleet is the snapshot, GET /fleet a page; HEAD has headers only', async () => {
    const d = await serve();
    const api = await fetch(`${d.url}/api/fleet`);
    expect(api.status).toBe(200);
    expect(api.headers.get('content-type')).toMatch(/^application\/json/);
    expect(FleetSnapshotSchema.parse(await api.json()).summary.status).toBe('green');
    const page = await fetch(`${d.url}/fleet`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<meta http-equiv="refresh"');
    expect(html).not.toMatch(/<script/i);
    const head = await raw(d.port, 'HEAD /fleet HTTP/1.1');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expectSecurityHeaders(head.headers);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('%s is 405 with the headers', async (method) => {
    const d = await serve();
    for (const path of ['/api/fleet', '/fleet', '/nope']) {
      const res = await raw(d.port, `${method} ${path} HTTP/1.1`, ['Content-Length: 0']);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET, HEAD');
      expectSecurityHeaders(res.headers);
    }
  });

  it('odd paths are 404 or 400, never a crash, always with the headers', async () => {
    const d = await serve();
    const cases: [string, number[]][] = [
      ['/../etc/passwd', [404]],
      ['/fleet/../../etc/passwd', [404]],
      ['/fleet%00', [404]],
      ['/%2e%2e/%2e%2e/etc/passwd', [404]],
      ['/api/fleet/', [404]],
      ['/FLEET', [404]],
      ['//fleet', [404]],
      ['*', [404, 400]],
      [`/${'a'.repeat(10_000)}`, [400]],
      [`/fleet?${'x'.repeat(10_000)}`, [400]],
      [`/${'b'.repeat(20_000)}`, [400, 431]],
    ];
    for (const [path, statuses] of cases) {
      const res = await raw(d.port, `GET ${path} HTTP/1.1`);
      expect(statuses, path.slice(0, 40)).toContain(res.status);
      expectSecurityHeaders(res.headers);
    }
    const garbage = await raw(d.port, 'BLAH\u0000 / HTTP/9');
    expect(garbage.status).toBe(400);
    expectSecurityHeaders(garbage.headers);
    expect((await fetch(`${d.url}/api/fleet?ts=1`)).status).toBe(200);
  });

  it('a failing snapshot is a generic 500; the details go to the log only', async () => {
    const logged: unknown[] = [];
    const d = await serve({
      snapshot: () => Promise.reject(new Error('secret path /root/.fleetbox exploded')),
      log: (...args) => logged.push(args),
    });
    for (const path of ['/api/fleet', '/fleet']) {
      const res = await raw(d.port, `GET ${path} HTTP/1.1`);
      expect(res.status).toBe(500);
      expect(res.body).not.toContain('secret');
      expectSecurityHeaders(res.headers);
    }
    expect(JSON.stringify(logged)).toContain('secret path');
  });

  it('caches the snapshot briefly and shares one fan-out among concurrent requests', async () => {
    let calls = 0;
    const d = await serve({
      snapshot: async () => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return fakeSnapshot();
      },
    });
    await Promise.all(Array.from({ length: 20 }, () => fetch(`${d.url}/api/fleet`).then((r) => r.text())));
    expect(calls).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await fetch(`${d.url}/api/fleet`).then((r) => r.text());
    expect(calls).toBe(2);
  });

  it('escapes whatever a member reports', () => {
    expect(escapeHtml('<script>alert("x")</script>&\'')).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  });

  it('a non-loopback bind needs a token; a token is checked on every request', async () => {
    await expect(startDashboard({ bind: '0.0.0.0', port: 0, snapshot: async () => fakeSnapshot() })).rejects.toThrow(/--token/);
    const d = await serve({ token: 's3cret' });
    const none = await raw(d.port, 'GET /api/fleet HTTP/1.1');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expectSecurityHeaders(none.headers);
    expect((await raw(d.port, 'GET /api/fleet HTTP/1.1', ['Authorization: Bearer wrong'])).status).toBe(401);
    expect((await raw(d.port, 'GET /api/fleet HTTP/1.1', ['Authorization: Bearer s3cret'])).status).toBe(200);
  });
});

const haveOpenssl = existsSync('/usr/bin/openssl');

describe.skipIf(!haveOpenssl)('dashboard over mutual TLS', () => {
  it('serves clients with a certificate from its CA and refuses the others', async () => {
    const dir = scratch();
    const ssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=fleetbox test CA');
    for (const who of ['server', 'client']) {
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'client'}`);
      const ext = `${dir}/${who}.ext`;
      execFileSync('/bin/sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
      ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '1', '-extfile', ext);
    }
    const file = (name: string) => readFileSync(`${dir}/${name}`);
    const d = await serve({ tls: { cert: file('server.pem'), key: file('server.key'), ca: file('ca.pem') } });
    expect(d.url).toMatch(/^https:/);
    const get = (withCert: boolean) =>
      new Promise<number>((resolve, reject) => {
        const req = https.get(`${d.url}/api/fleet`, { ca: file('ca.pem'), ...(withCert && { cert: file('client.pem'), key: file('client.key') }), agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
    expect(await get(true)).toBe(200);
    await expect(get(false)).rejects.toThrow();
  });
});
