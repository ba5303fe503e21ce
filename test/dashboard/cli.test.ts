import { execFile, spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetSnapshotSchema } from '../../dist/protocol/health.js';
import type { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

describe('fleetbox dashboard', () => {
  /** Starts `fleetbox dashboard` with these args; resolves with its URL, its pid and a stopper. */
  async function dashboard(args: string[], env: NodeJS.ProcessEnv) {
    const child = spawn(CLI, ['dashboard', '--port', '0', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const lines = createInterface({ input: child.stderr });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const match = /^fleetbox dashboard: (http:\/\/127\.0\.0\.1:\d+)\/fleet/.exec(line);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`dashboard exited with ${code}`)));
    });
    const stop = async () => {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    };
    return { url, pid: child.pid as number, stop };
  }

  it('serves the local fleet on 127.0.0.1 until SIGTERM', async () => {
    store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: '100' };
    await run(CLI, ['up', 'dash', '-n', '2', '--backend', 'process'], { env });
    const { url, stop } = await dashboard([], env);
    try {
      const snapshot = FleetSnapshotSchema.parse(await (await fetch(`${url}/api/fleet`)).json());
      expect(snapshot.members.map((m) => m.name)).toEqual(['dash-1', 'dash-2']);
      const page = await fetch(`${url}/fleet`);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(await page.text()).toContain('dash-2');
    } finally {
      await stop();
    }
  });

  it('shows a fault a test injected as amber "fault injected" with the command that heals it, and green once healed', async () => {
    store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: '100' };
    await run(CLI, ['up', 'dfault', '-n', '2', '--backend', 'process'], { env });
    await run(CLI, ['fault', 'pause', 'dfault-2'], { env });
    const { url, stop } = await dashboard([], env);
    try {
      await expect
        .poll(async () => FleetSnapshotSchema.parse(await (await fetch(`${url}/api/fleet`)).json()).members.find((m) => m.name === 'dfault-2'), { timeout: 10_000, interval: 200 })
        .toMatchObject({ status: 'amber', problem: expect.stringContaining('fault injected: dfault-2 paused') });
      const html = await (await fetch(`${url}/fleet`)).text();
      expect(html).toMatch(/<span class="amber">AMBER<\/span> dfault-2: check fault: fault injected: dfault-2 paused/);
      expect(html).toContain('<code>a test injected this on purpose; to end it: fleetbox fault heal dfault-2</code>');
      await run(CLI, ['fault', 'resume', 'dfault-2'], { env });
      await expect
        .poll(async () => FleetSnapshotSchema.parse(await (await fetch(`${url}/api/fleet`)).json()).members.find((m) => m.name === 'dfault-2')?.status, { timeout: 10_000, interval: 200 })
        .toBe('green');
    } finally {
      await stop();
    }
  });

  it('refuses a non-loopback bind without a token (exit 2)', async () => {
    store = tempStore();
    const result = await run(CLI, ['dashboard', '--bind', '0.0.0.0', '--port', '0'], { env: { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_TOKEN: '' } }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect('code' in result && result.code).toBe(2);
    expect(result.stderr).toMatch(/^fleetbox: binding the dashboard to 0\.0\.0\.0 .*--token/);
  });

  const statusWith = async (url: string, token?: string) =>
    (await fetch(`${url}/api/fleet`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;

  it('takes the token from --token-file or $FLEETBOX_DASHBOARD_TOKEN, so it never shows in ps', async () => {
    store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_TOKEN: '' };
    const file = join(store.home, 'token');
    writeFileSync(file, 'fil3-t0ken\n', { mode: 0o600 });
    const fromFile = await dashboard(['--token-file', file], env);
    try {
      expect(readFileSync(`/proc/${fromFile.pid}/cmdline`, 'latin1')).not.toContain('fil3-t0ken');
      expect(await statusWith(fromFile.url)).toBe(401);
      expect(await statusWith(fromFile.url, 'wrong')).toBe(401);
      expect(await statusWith(fromFile.url, 'fil3-t0ken')).toBe(200);
    } finally {
      await fromFile.stop();
    }
    const fromEnv = await dashboard([], { ...env, FLEETBOX_DASHBOARD_TOKEN: 'env-t0ken' });
    try {
      expect(await statusWith(fromEnv.url)).toBe(401);
      expect(await statusWith(fromEnv.url, 'env-t0ken')).toBe(200);
    } finally {
      await fromEnv.stop();
    }
  });

  it('refuses a --token-file others can read, or one that is not one line (exit 2)', async () => {
    store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home };
    const file = join(store.home, 'token');
    const refused = (args: string[]) =>
      run(CLI, ['dashboard', '--port', '0', ...args], { env }).then(
        () => ({ code: 0, stderr: 'it started' }),
        (e: { code: number; stderr: string }) => e,
      );
    writeFileSync(file, 's3cret\n');
    chmodSync(file, 0o644);
    const open = await refused(['--token-file', file]);
    expect([open.code, open.stderr]).toEqual([2, expect.stringMatching(/open to group or others \(mode 0644\); run: chmod 600/)]);
    chmodSync(file, 0o600);
    writeFileSync(file, 'one\ntwo\n');
    const twoLines = await refused(['--token-file', file]);
    expect([twoLines.code, twoLines.stderr]).toEqual([2, expect.stringMatching(/one line/)]);
    const missing = await refused(['--token-file', join(store.home, 'nope')]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/ENOENT/)]);
    const both = await refused(['--token-file', file, '--token', 'x']);
    expect(both.code).toBe(2);
  });
});
