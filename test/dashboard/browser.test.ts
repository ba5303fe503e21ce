import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../dist/dashboard/server.js';
import { renderPage } from '../../dist/dashboard/html.js';
import { classifyMember, rollup } from '../../dist/health/rollup.js';
import type { FleetSnapshot } from '../../dist/protocol/health.js';
import { scratch } from '../scratch.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`skipping the browser test: ${CHROMIUM} is missing (apt-get install -y chromium)`);

/** Loads `url` in headless Chromium and returns what it printed: the DOM on stdout, its console on stderr. */
function load(url: string): Promise<{ dom: string; console: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', `--user-data-dir=${scratch()}`, '--enable-logging=stderr', '--v=0', '--dump-dom', url],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && !stdout) return reject(new Error(`chromium failed: ${error.message}`));
        resolve({ dom: stdout, console: stderr.split('\n').filter((line) => line.includes(':CONSOLE')) });
      },
    );
  });
}

/** A snapshot with hostile text in it: it must render as text, not as markup. */
function hostileSnapshot(): FleetSnapshot {
  const now = Date.now();
  const member = classifyMember(
    {
      ref: { cluster: 'web', name: 'web-1' },
      config: { backend: 'process', createdAt: new Date(now - 60_000).toISOString(), port: 7000 },
      probe: { ok: true, ms: 1, status: { name: 'web-1', pid: 1, running: false, ip: null, state: 'error', since: new Date(now).toISOString(), error: '<script>alert(1)</script><img src=x onerror=alert(2)>' } },
      disk: undefined,
      holder: { pid: 2, procState: 'S' },
      heartbeat: { at: new Date(now).toISOString(), staleAfterMs: 10_000 },
      checks: [],
      timeoutMs: 2_000,
    },
    { now },
  );
  return rollup({ members: [member], clusters: [], now });
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

describe.skipIf(!haveChromium)('dashboard in a real browser (headless Chromium)', () => {
  it('loads /fleet with no Content-Security-Policy violation and renders hostile text inertly', async () => {
    const dashboard: Dashboard = await startDashboard({ port: 0, snapshot: async () => hostileSnapshot() });
    closers.push(() => dashboard.close());
    const page = await load(`${dashboard.url}/fleet`);
    expect(page.dom).toContain('fleetbox fleet');
    expect(page.dom).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.dom).not.toMatch(/<script>alert/);
    expect(page.console.filter((line) => /Content Security Policy|Refused to/i.test(line))).toEqual([]);
  });

  it('(control) the same check does see a violation when the policy lacks the style hash', async () => {
    const html = renderPage(hostileSnapshot(), 5);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'none'" });
      res.end(html);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const page = await load(`http://127.0.0.1:${(server.address() as AddressInfo).port}/fleet`);
    expect(page.console.some((line) => /Content Security Policy/.test(line))).toBe(true);
  });
});
