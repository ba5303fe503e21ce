import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetSnapshotSchema } from '../../dist/health/schema.js';
import type { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

describe('fleetbox dashboard', () => {
  it('serves the local fleet on 127.0.0.1 until SIGTERM', async () => {
    store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: '100' };
    await run(CLI, ['up', 'dash', '-n', '2', '--backend', 'process'], { env });
    const child = spawn(CLI, ['dashboard', '--port', '0'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const lines = createInterface({ input: child.stderr });
      const url = await new Promise<string>((resolve, reject) => {
        lines.on('line', (line) => {
          const match = /^fleetbox dashboard: (http:\/\/127\.0\.0\.1:\d+)\/fleet/.exec(line);
          if (match?.[1]) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`dashboard exited with ${code}`)));
      });
      const snapshot = FleetSnapshotSchema.parse(await (await fetch(`${url}/api/fleet`)).json());
      expect(snapshot.members.map((m) => m.name)).toEqual(['dash-1', 'dash-2']);
      const page = await fetch(`${url}/fleet`);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(await page.text()).toContain('dash-2');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
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
});
