import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../dist/host/logger.js';
import { HeartbeatFileSchema, type HeartbeatFile } from '../../dist/protocol/health.js';
import { heartbeatPath } from '../../dist/store/heartbeat.js';
import { diskSpaceChecker } from '../../dist/holder/checkers/disk-space.js';
import { processAliveChecker } from '../../dist/holder/checkers/process-alive.js';
import { runCheck } from '../../dist/holder/checkers/run.js';
import type { MemberChecker, MemberTarget } from '../../dist/holder/checkers/types.js';
import { HealthMonitor } from '../../dist/holder/health-loop.js';
import { healthSettings, holderSettingsFromEnv, HolderOptionsSchema } from '../../dist/protocol/holder-options.js';
import { Store } from '../../dist/store/layout.js';
import { processStartTime } from '../../dist/host/proc.js';
import { scratch } from '../scratch.js';

const never = new AbortController().signal;
const store = () => new Store(scratch()).ensure();

function target(overrides: Partial<MemberTarget> = {}): MemberTarget {
  return {
    name: 'web-1',
    cluster: 'web',
    backend: 'process',
    state: 'running',
    since: new Date().toISOString(),
    ip: '127.0.0.1',
    port: 1,
    process: { pid: process.pid, startTime: processStartTime(process.pid) ?? '0' },
    inside: [],
    faults: [],
    paused: false,
    ...overrides,
  };
}

function memoryLog(): Logger & { lines: { level: string; event: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; event: string; fields?: Record<string, unknown> }[] = [];
  return {
    lines,
    info: (event, fields) => lines.push({ level: 'info', event, ...(fields && { fields }) }),
    warn: (event, fields) => lines.push({ level: 'warn', event, ...(fields && { fields }) }),
    error: (event, fields) => lines.push({ level: 'error', event, ...(fields && { fields }) }),
  };
}

describe('runCheck', () => {
  const s = store();
  const ctx = (signal: AbortSignal) => ({ store: s, signal, member: target() });

  it('a checker that throws (even synchronously) is a failing check', async () => {
    const thrower: MemberChecker = { name: 'boom', check: () => { throw new Error('kaput\nstack'); } };
    const result = await runCheck(thrower, ctx, { timeoutMs: 500, signal: never });
    expect(result).toMatchObject({ name: 'boom', status: 'fail', detail: 'checker threw: kaput' });
    const rejecter: MemberChecker = { name: 'boom', check: () => Promise.reject(new Error('no')) };
    expect((await runCheck(rejecter, ctx, { timeoutMs: 500, signal: never })).detail).toBe('checker threw: no');
  });

  it('a checker that never settles fails at its deadline and sees its signal aborted', async () => {
    let seen: AbortSignal | undefined;
    const hanger: MemberChecker = { name: 'hang', check: ({ signal }) => { seen = signal; return new Promise(() => {}); } };
    const t0 = Date.now();
    const result = await runCheck(hanger, ctx, { timeoutMs: 100, signal: never });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(result).toMatchObject({ status: 'fail', detail: 'check did not finish within 100 ms' });
    expect(seen?.aborted).toBe(true);
  });

  it('a checker that returns garbage is a failing check', async () => {
    const liar = { name: 'liar', check: () => Promise.resolve({ status: 'great' }) } as unknown as MemberChecker;
    expect((await runCheck(liar, ctx, { timeoutMs: 100, signal: never })).status).toBe('fail');
  });

  it('an immediate checker (no deadline timer) is judged alike: its answer, a throw, garbage', async () => {
    const fine: MemberChecker = { name: 'now', checkNow: ({ member }) => ({ status: 'pass', detail: member.name }) };
    expect(await runCheck(fine, ctx, { timeoutMs: 100, signal: never })).toMatchObject({ name: 'now', status: 'pass', detail: 'web-1' });
    const thrower: MemberChecker = { name: 'now', checkNow: () => { throw new Error('kaput\nstack'); } };
    expect(await runCheck(thrower, ctx, { timeoutMs: 100, signal: never })).toMatchObject({ status: 'fail', detail: 'checker threw: kaput' });
    const liar = { name: 'now', checkNow: () => ({ status: 'great' }) } as unknown as MemberChecker;
    expect((await runCheck(liar, ctx, { timeoutMs: 100, signal: never })).status).toBe('fail');
  });
});

describe('shipped checkers', () => {
  const s = store();

  it('process-alive: passes for a live process, fails for a gone or reused PID, skips without a process', () => {
    const check = (member: MemberTarget) => processAliveChecker.checkNow({ store: s, signal: never, member });
    expect(check(target()).status).toBe('pass');
    expect(check(target({ process: { pid: process.pid, startTime: '1' } }))).toMatchObject({ status: 'fail', detail: expect.stringContaining('reused') });
    expect(check(target({ process: { pid: 2 ** 22 + 1, startTime: '1' } }))).toMatchObject({ status: 'fail', detail: expect.stringContaining('gone') });
    expect(check(target({ process: null, state: 'starting' })).status).toBe('skip');
  });

  it('disk-space: pass, warn and fail by thresholds', async () => {
    const ctx = { store: s, signal: never };
    expect((await diskSpaceChecker().check(ctx)).status).toBe('pass');
    const huge = Number.MAX_SAFE_INTEGER;
    expect((await diskSpaceChecker({ failBytes: 0, failFraction: 0, warnBytes: huge, warnFraction: 0 }).check(ctx)).status).toBe('warn');
    expect((await diskSpaceChecker({ failBytes: huge, failFraction: 0, warnBytes: 0, warnFraction: 0 }).check(ctx)).status).toBe('fail');
  });
});

describe('HealthMonitor', () => {
  it('keeps running rounds and heart-beating while a checker throws and another never resolves', async () => {
    const s = store();
    const log = memoryLog();
    const written: HeartbeatFile[] = [];
    const monitor = new HealthMonitor({
      pollMs: 50,
      checkTimeoutMs: 60,
      staleAfterMs: 1_000,
      store: s,
      cluster: 'web',
      log,
      holder: { pid: process.pid, startTime: '1', instance: 'test' },
      members: () => [target()],
      checkers: {
        member: [
          { name: 'throws', check: () => { throw new Error('injected'); } },
          { name: 'hangs', check: () => new Promise(() => {}) },
          processAliveChecker,
        ],
        holder: [],
      },
      write: async (file) => {
        written.push(file);
      },
    }).start();
    try {
      await expect.poll(() => monitor.rounds, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
    } finally {
      monitor.stop();
    }
    const last = written.at(-1);
    expect(HeartbeatFileSchema.parse(last)).toBeTruthy();
    const checks = last?.members['web-1']?.checks ?? [];
    expect(checks.find((c) => c.name === 'throws')).toMatchObject({ status: 'fail', detail: 'checker threw: injected' });
    expect(checks.find((c) => c.name === 'hangs')).toMatchObject({ status: 'fail', detail: 'check did not finish within 60 ms' });
    expect(checks.find((c) => c.name === 'process-alive')?.status).toBe('pass');
    // Logged once per change of verdict, not once per round.
    expect(log.lines.filter((l) => l.event === 'check_failed')).toHaveLength(2);
    const rounds = monitor.rounds;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(monitor.rounds).toBe(rounds);
  });

  it('writes its heartbeat file atomically and removes it when stopped', async () => {
    const s = store();
    mkdirSync(s.clusterDir('web'));
    const monitor = new HealthMonitor({
      ...healthSettings({ FLEETBOX_HEALTH_POLL_MS: '50' }),
      store: s,
      cluster: 'web',
      log: memoryLog(),
      holder: { pid: process.pid, startTime: '1', instance: 'test' },
      members: () => [],
      checkers: { member: [], holder: [diskSpaceChecker()] },
    }).start();
    const path = heartbeatPath(s, 'web');
    try {
      await expect.poll(() => existsSync(path) && monitor.rounds > 0 && (JSON.parse(readFileSync(path, 'utf8')) as HeartbeatFile).checks.length > 0, { timeout: 5_000 }).toBe(true);
      expect(HeartbeatFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')))).toMatchObject({ cluster: 'web', pollMs: 50 });
    } finally {
      monitor.stop();
    }
    expect(existsSync(path)).toBe(false);
  });

  it('settings: defaults, environment overrides, and a stale threshold never below two polls plus a check', () => {
    expect(healthSettings({})).toEqual({ enabled: true, pollMs: 2_000, checkTimeoutMs: 1_000, staleAfterMs: 10_000 });
    expect(healthSettings({ FLEETBOX_HEALTH_POLL_MS: '100', FLEETBOX_HEALTH_STALE_MS: '150' })).toEqual({ enabled: true, pollMs: 100, checkTimeoutMs: 100, staleAfterMs: 300 });
    expect(healthSettings({ FLEETBOX_HEALTH_POLL_MS: 'soon' }).pollMs).toBe(2_000);
    expect(healthSettings({ FLEETBOX_HEALTH: 'off' }).enabled).toBe(false);
  });

  it('settings reach the holder only in its options: what the environment sets is read by the client and validated', () => {
    const options = HolderOptionsSchema.parse({ home: '/x', mode: 'bound', parentPid: 42, ...holderSettingsFromEnv({ FLEETBOX_HEALTH_POLL_MS: '300', FLEETBOX_ACCEL: 'tcg' }) });
    expect(options).toMatchObject({ parentPid: 42, accel: 'tcg', health: { enabled: true, pollMs: 300 } });
    expect(HolderOptionsSchema.parse({ home: '/x', mode: 'detached' }).health).toEqual(healthSettings({}));
    expect(holderSettingsFromEnv({ FLEETBOX_ACCEL: 'fast' })).not.toHaveProperty('accel');
    expect(HolderOptionsSchema.safeParse({ home: '/x', mode: 'detached', health: { enabled: true, pollMs: 1, checkTimeoutMs: 1, staleAfterMs: 1 } }).success).toBe(false);
  });
});
