import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Store } from '../../dist/store/layout.js';
import { readNetworkRecord } from '../../dist/net/address-book.js';
import { ROOT, alive, eventually, processesOf } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

const skip = reportSkip('the VM worker-kill test', cannotBootVms());

describe.skipIf(skip)('fleetbox/vitest with real VMs', () => {
  it('a SIGKILLed vitest worker leaves no QEMU, holder, socket or namespace of its cluster', async () => {
    const store = new Store(vmStore().home).ensure();
    const report = `${store.home}/report.json`;
    const child = spawn(
      process.execPath,
      [`${ROOT}/node_modules/vitest/vitest.mjs`, 'run', '--config', 'test/fixtures/vitest.fixture.config.ts'],
      { cwd: ROOT, env: { ...process.env, FLEETBOX_HOME: store.home, FBX_REPORT: report, FBX_BACKEND: 'qemu' }, stdio: 'ignore' },
    );
    try {
      expect(await eventually(() => existsSync(report), 90_000)).toBe(true);
      const started = JSON.parse(readFileSync(report, 'utf8')) as { worker: number; holder: number; members: number[]; cluster: string };
      const namespace = readNetworkRecord(store, started.cluster)?.namespace ?? '';
      expect(namespace).toMatch(/^fbx-/);
      const pids = [started.holder, ...started.members];
      expect(alive(pids)).toHaveLength(3);
      process.kill(started.worker, 'SIGKILL');
      // asserted on /proc and `ip netns`, not on anyone's word
      expect(await eventually(() => alive(pids).length === 0, 5_000)).toBe(true);
      expect(await eventually(() => !execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(namespace), 5_000)).toBe(true);
      expect(existsSync(store.controlSocketPath(started.cluster))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await eventually(() => processesOf(store).filter((pid) => pid !== child.pid).length === 0, 10_000);
      rmSync(store.home, { recursive: true, force: true });
    }
  }, 150_000);
});
