import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect } from 'vitest';
import { clusterNameFor, fleetboxTest } from '../../dist/vitest.js';
import { ROOT, alive, destroyStore, eventually, tempStore } from '../helpers.js';

const store = tempStore();
afterAll(async () => {
  await destroyStore(store);
});

const it = fleetboxTest({ members: 2, backend: 'process', home: store.home });

describe('fleetbox/vitest', () => {
  it('gives each test its own running cluster, named after the test', async ({ cluster }) => {
    expect(cluster.name).toMatch(/^gives-each-test-its-own-running-cluster-x[0-9a-f]{6}$/);
    expect(cluster.members.map((m) => m.state)).toEqual(['running', 'running']);
    const r = await cluster.members[1]?.exec('echo $FLEETBOX_NAME');
    expect(r?.stdout).toBe(`${cluster.name}-2\n`);
  });

  it('derives safe cluster names', () => {
    expect(clusterNameFor('Raft: survives losing a node!')).toBe('raft-survives-losing-a-node');
    expect(clusterNameFor('???')).toBe('test');
    expect(clusterNameFor('x'.repeat(100))).toHaveLength(40);
  });

  it('a SIGKILLed vitest worker leaves no member process, holder or socket behind', async () => {
    const report = `${store.home}/report.json`;
    const child = spawn(
      process.execPath,
      [`${ROOT}/node_modules/vitest/vitest.mjs`, 'run', '--config', 'test/fixtures/vitest.fixture.config.ts'],
      { cwd: ROOT, env: { ...process.env, FLEETBOX_HOME: store.home, FBX_REPORT: report }, stdio: 'ignore' },
    );
    try {
      expect(await eventually(() => existsSync(report), 60_000)).toBe(true);
      const started = JSON.parse(readFileSync(report, 'utf8')) as { worker: number; holder: number; members: number[]; cluster: string };
      const pids = [started.holder, ...started.members];
      expect(alive(pids)).toHaveLength(3);
      process.kill(started.worker, 'SIGKILL');
      expect(await eventually(() => alive(pids).length === 0, 5_000)).toBe(true);
      expect(existsSync(store.controlSocketPath(started.cluster))).toBe(false);
      expect(existsSync(store.memberSocketPath(`${started.cluster}-1`))).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
