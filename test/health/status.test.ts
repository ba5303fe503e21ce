import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { heartbeatPath } from '../../dist/store/heartbeat.js';
import { collectLocal } from '../../dist/health/local.js';
import { FleetSnapshotSchema, HeartbeatFileSchema, type FleetSnapshot, type HeartbeatFile } from '../../dist/protocol/health.js';
import type { Store } from '../../dist/store/layout.js';
import { processStartTime } from '../../dist/host/proc.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

const FAST = { FLEETBOX_HEALTH_POLL_MS: '100', FLEETBOX_HEALTH_TIMEOUT_MS: '100' };

function cli(args: string[], env: Record<string, string> = {}) {
  return run(CLI, args, { env: { ...process.env, ...FAST, ...env, FLEETBOX_HOME: store.home } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function snapshot(args: string[] = []): Promise<FleetSnapshot> {
  const result = await cli(['status', '--json', ...args]);
  expect(result.code, result.stderr).toBe(0);
  return FleetSnapshotSchema.parse(JSON.parse(result.stdout));
}

function heartbeat(cluster: string): HeartbeatFile {
  return HeartbeatFileSchema.parse(JSON.parse(readFileSync(heartbeatPath(store, cluster), 'utf8')));
}

describe('fleetbox status (fleet health)', () => {
  it('rolls a live cluster up to green, with checks and heartbeats, in every output form', async () => {
    store = tempStore();
    expect((await cli(['up', 'demo', '-n', '3', '--backend', 'process'])).code).toBe(0);
    await expect.poll(async () => (await snapshot()).summary.status, { timeout: 10_000, interval: 200 }).toBe('green');
    const fleet = await snapshot();
    expect(fleet.summary).toMatchObject({ status: 'green', issues: [], suggestedNextAction: null, counts: { members: 3, green: 3, clusters: 1 } });
    expect(fleet.members.every((m) => m.source === 'holder' && m.lastHeartbeat !== null && m.checks.some((c) => c.name === 'port' && c.status === 'pass'))).toBe(true);
    expect(fleet.clusters[0]?.checks.map((c) => c.name)).toEqual(['disk-space']);
    expect(heartbeat('demo').members['demo-2']?.checks.length).toBeGreaterThan(0);

    const one = JSON.parse((await cli(['status', 'demo-2', '--json'])).stdout) as Record<string, unknown>;
    expect(one).toMatchObject({ name: 'demo-2', cluster: 'demo', state: 'running', source: 'holder', status: 'green', backend: 'process' });

    const human = await cli(['status']);
    expect(human.stdout.split('\n')[0]).toBe('GREEN: all 3 running members healthy');
    expect(human.stdout).toMatch(/^MEMBER\s+STATUS\s+HEALTH\s+STATE\s+IP\s+PID\s+HEARTBEAT\s+CHECKS$/m);
    const detail = await cli(['status', 'demo-1']);
    expect(detail.stdout).toMatch(/^demo-1 {2}RUNNING {2}green \(healthy\)/);
    expect(detail.stdout).toMatch(/check\s+port\s+pass/);

    const missing = await cli(['status', 'nope']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^fleetbox: no member or cluster named nope/);
  });

  it('a SIGSTOPped (wedged) holder is red/stale while status still returns within its timeout', async () => {
    store = tempStore();
    expect((await cli(['up', 'wedge', '-n', '2', '--backend', 'process'])).code).toBe(0);
    const holderPid = heartbeat('wedge').holder.pid;
    process.kill(holderPid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const fleet = await snapshot(['--timeout', '0.3']);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(fleet.summary.status).toBe('red');
      expect(fleet.summary.counts.stale).toBe(2);
      expect(fleet.members.map((m) => [m.health, m.source])).toEqual([['stale', 'disk'], ['stale', 'disk']]);
      expect(fleet.summary.suggestedNextAction).toBe(`kill -CONT ${holderPid}`);
      expect(fleet.warnings).toHaveLength(2);
    } finally {
      process.kill(holderPid, 'SIGCONT');
    }
    await expect.poll(async () => (await snapshot()).summary.status, { timeout: 10_000, interval: 200 }).toBe('green');
  });

  it.each(['throw', 'hang'])('a checker that %ss is a failing check; the loop keeps ticking and the holder keeps answering', async (fault) => {
    store = tempStore();
    expect((await cli(['up', 'faulty', '--backend', 'process'], { FLEETBOX_HEALTH_FAULT: fault })).code).toBe(0);
    await expect.poll(() => heartbeat('faulty').rounds, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    const before = heartbeat('faulty').rounds;
    await expect.poll(() => heartbeat('faulty').rounds, { timeout: 10_000 }).toBeGreaterThan(before);
    const check = heartbeat('faulty').members['faulty-1']?.checks.find((c) => c.name === 'fault');
    expect(check).toMatchObject({ status: 'fail', detail: fault === 'throw' ? 'checker threw: injected checker fault' : 'check did not finish within 100 ms' });
    const row = (await snapshot()).members[0];
    expect(row).toMatchObject({ name: 'faulty-1', source: 'holder', state: 'running' });
    // Young members fail into amber (grace); the problem names the check either way.
    expect(['amber', 'red']).toContain(row?.status);
    expect(row?.problem).toContain('check fault failing');
    const log = readFileSync(store.holderLogPath('faulty'), 'utf8');
    expect(log).toContain('"event":"check_failed"');
  });

  it('one member that never answers is a warning row from disk; the rest are not held up', async () => {
    store = tempStore();
    expect((await cli(['up', 'ok', '-n', '2', '--backend', 'process'])).code).toBe(0);
    // A member whose "holder" (this test process) accepts connections and never replies.
    const dir = store.memberDir('slow', 'slow-1');
    mkdirSync(dir, { recursive: true });
    const now = new Date().toISOString();
    writeFileSync(store.configPath('slow', 'slow-1'), JSON.stringify({ name: 'slow-1', cluster: 'slow', backend: 'process', port: 7000, cpus: 1, memoryMiB: 256, diskMiB: 0, bootTimeoutMs: 1000, createdAt: now }));
    writeFileSync(store.statePath('slow', 'slow-1'), JSON.stringify({ name: 'slow-1', pid: null, running: true, ip: '127.9.9.9', state: 'running', since: now }));
    writeFileSync(store.pidfilePath('slow', 'slow-1'), `${process.pid} ${processStartTime(process.pid)} test\n`);
    const server: Server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(store.memberSocketPath('slow-1'), resolve));
    try {
      await expect.poll(async () => (await collectLocal(store)).members.filter((m) => m.status === 'green').length, { timeout: 10_000, interval: 200 }).toBe(2);
      const t0 = Date.now();
      const fleet = await collectLocal(store, { timeoutMs: 300 });
      expect(Date.now() - t0).toBeLessThan(1_500);
      const slow = fleet.members.find((m) => m.name === 'slow-1');
      expect(slow).toMatchObject({ status: 'amber', health: 'unresponsive', source: 'disk', holderPid: process.pid });
      expect(fleet.warnings).toEqual([{ subject: 'slow-1', message: 'slow-1 did not answer (no answer within 300 ms); showing its last state on disk' }]);
      expect(fleet.members.filter((m) => m.cluster === 'ok').map((m) => m.status)).toEqual(['green', 'green']);
      expect(fleet.summary.status).toBe('amber');
    } finally {
      server.close();
      rmSync(store.clusterDir('slow'), { recursive: true, force: true });
    }
  });
});
