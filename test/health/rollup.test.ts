import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyMember, rollup, type MemberObservation } from '../../dist/health/rollup.js';
import { FleetSnapshotSchema, type MemberHealth } from '../../dist/protocol/health.js';
import { HEALTH_KINDS, LEVELS, levelRank } from '../../dist/protocol/health-levels.js';

const NOW = Date.parse('2026-01-01T12:00:00.000Z');
const iso = (msAgo: number) => new Date(NOW - msAgo).toISOString();

function observe(overrides: Partial<MemberObservation> = {}): MemberObservation {
  return {
    ref: { cluster: 'web', name: 'web-1' },
    config: { backend: 'process', createdAt: iso(600_000), port: 7000 },
    probe: {
      ok: true,
      ms: 0.3,
      status: { name: 'web-1', pid: 42, running: true, ip: '127.1.1.1', state: 'running', since: iso(60_000) },
    },
    disk: undefined,
    holder: { pid: 40, procState: 'S' },
    heartbeat: { at: iso(500), staleAfterMs: 10_000 },
    checks: [{ name: 'port', status: 'pass', detail: 'ok', durationMs: 1, at: iso(500) }],
    timeoutMs: 2_000,
    ...overrides,
  };
}

const silent = { ok: false, reason: 'timeout', message: 'no answer within 2000 ms', ms: 2000 } as const;
const failing = [{ name: 'port', status: 'fail', detail: '127.1.1.1:7000: ECONNREFUSED', durationMs: 1, at: iso(500) }] as const;

describe('classifyMember', () => {
  it('a running member whose checks pass and whose holder heart-beats is green', () => {
    const row = classifyMember(observe(), { now: NOW });
    expect(row).toMatchObject({ status: 'green', health: 'healthy', source: 'holder', problem: null, action: null, pid: 42 });
  });

  it('a failing check is amber during the grace period after (re)start and red after it', () => {
    const young = classifyMember(observe({ checks: [...failing], probe: { ...observe().probe, status: { name: 'web-1', pid: 42, running: true, ip: '127.1.1.1', state: 'running', since: iso(2_000) } } as MemberObservation['probe'] }), { now: NOW, graceMs: 15_000 });
    expect(young).toMatchObject({ status: 'amber', health: 'grace' });
    const old = classifyMember(observe({ checks: [...failing] }), { now: NOW, graceMs: 15_000 });
    expect(old).toMatchObject({ status: 'red', health: 'failing' });
    expect(old.problem).toContain('ECONNREFUSED');
    expect(old.action).toContain('fleetbox logs web-1');
  });

  it('a silent holder with a heartbeat older than its threshold is stale (red) with a next action', () => {
    const row = classifyMember(observe({ probe: silent, heartbeat: { at: iso(12_000), staleAfterMs: 10_000 }, disk: { name: 'web-1', pid: 42, running: true, ip: '127.1.1.1', state: 'running', since: iso(60_000) } }), { now: NOW });
    expect(row).toMatchObject({ status: 'red', health: 'stale', source: 'disk', state: 'running', holderPid: 40 });
    expect(row.problem).toMatch(/wedged/);
    expect(row.action).toBe('kill -9 40 (holder of web), then fleetbox up web');
  });

  it('a SIGSTOPped holder is stale at once, and the action is to continue it', () => {
    const row = classifyMember(observe({ probe: silent, holder: { pid: 40, procState: 'T' } }), { now: NOW });
    expect(row).toMatchObject({ status: 'red', health: 'stale', action: 'kill -CONT 40' });
  });

  it('a silent holder with a fresh heartbeat is amber (busy), not red', () => {
    expect(classifyMember(observe({ probe: silent }), { now: NOW })).toMatchObject({ status: 'amber', health: 'unresponsive' });
  });

  it('a holder that answers but writes no heartbeat is amber; in grace when the member is young', () => {
    expect(classifyMember(observe({ heartbeat: undefined }), { now: NOW })).toMatchObject({ status: 'amber', health: 'no_heartbeat' });
    expect(classifyMember(observe({ heartbeat: { at: iso(30_000), staleAfterMs: 10_000 } }), { now: NOW })).toMatchObject({ status: 'amber', health: 'no_heartbeat' });
  });

  it('no live holder: recorded as running → holder gone (red); error → red; stopped → grey', () => {
    const gone = (state: 'running' | 'error' | 'stopped') =>
      classifyMember(observe({ probe: { ok: false, reason: 'no_socket', message: 'ENOENT', ms: 0.1 }, holder: undefined, heartbeat: undefined, checks: [], disk: { name: 'web-1', pid: 42, running: state === 'running', ip: '127.1.1.1', state, since: iso(5_000), ...(state === 'error' && { error: 'boom\nmore' }) } }), { now: NOW });
    expect(gone('running')).toMatchObject({ status: 'red', health: 'holder_gone', state: 'stopped', running: false, pid: null, action: 'fleetbox up web-1' });
    expect(gone('error')).toMatchObject({ status: 'red', health: 'error', state: 'error', problem: 'failed: boom more' });
    expect(gone('stopped')).toMatchObject({ status: 'grey', health: 'stopped', action: null });
  });

  it('starting and downloading members are amber (grace), an errored one red', () => {
    const withState = (state: 'starting' | 'downloading' | 'error') =>
      classifyMember(observe({ probe: { ok: true, ms: 1, status: { name: 'web-1', pid: null, running: false, ip: null, state, since: iso(1_000), ...(state === 'error' && { error: 'did not boot' }) } } }), { now: NOW });
    expect(withState('starting')).toMatchObject({ status: 'amber', health: 'grace' });
    expect(withState('downloading')).toMatchObject({ status: 'amber', health: 'grace' });
    expect(withState('error')).toMatchObject({ status: 'red', health: 'error' });
  });
});

function row(name: string, status: MemberHealth['status'], health: MemberHealth['health']): MemberHealth {
  const base = classifyMember(observe({ ref: { cluster: 'web', name } }), { now: NOW });
  return { ...base, name, status, health, problem: status === 'green' || status === 'grey' ? null : `${health} problem`, action: status === 'green' || status === 'grey' ? null : `fix ${name}` };
}

describe('rollup', () => {
  it('orders red before amber before green, stale first, and suggests the most urgent action', () => {
    const snapshot = rollup({
      members: [row('web-1', 'green', 'healthy'), row('web-2', 'amber', 'grace'), row('web-3', 'red', 'error'), row('web-4', 'red', 'stale'), row('web-5', 'grey', 'stopped')],
      clusters: [],
      now: NOW,
    });
    expect(snapshot.members.map((m) => m.name)).toEqual(['web-4', 'web-3', 'web-2', 'web-1', 'web-5']);
    expect(snapshot.summary.status).toBe('red');
    expect(snapshot.summary.issues.map((i) => i.subject)).toEqual(['web-4', 'web-3', 'web-2']);
    expect(snapshot.summary.suggestedNextAction).toBe('fix web-4');
    expect(snapshot.summary.counts).toEqual({ clusters: 0, members: 5, red: 2, amber: 1, green: 1, grey: 1, stale: 1 });
    expect(snapshot.summary.message).toBe('RED: 2 of 5 members need action (1 stale), 1 to watch, 1 healthy, 1 stopped');
    expect(FleetSnapshotSchema.safeParse(snapshot).success).toBe(true);
  });

  it('says how many issues it hides when it truncates', () => {
    const members = Array.from({ length: 14 }, (_, i) => row(`web-${i + 1}`, 'red', 'error'));
    const snapshot = rollup({ members, clusters: [], now: NOW, issueLimit: 10 });
    expect(snapshot.summary.issues).toHaveLength(10);
    expect(snapshot.summary.hiddenIssues).toBe(4);
    expect(snapshot.summary.message).toContain('4 more issues not listed');
  });

  it('green when every running member is healthy; an empty fleet says so', () => {
    expect(rollup({ members: [row('a-1', 'green', 'healthy'), row('a-2', 'grey', 'stopped')], clusters: [], now: NOW }).summary).toMatchObject({
      status: 'green',
      message: 'GREEN: all 1 running member healthy, 1 stopped',
      suggestedNextAction: null,
      issues: [],
    });
    expect(rollup({ members: [], clusters: [], now: NOW }).summary.message).toBe('GREEN: no members');
  });

  it('properties: status is the worst member colour, issues are sorted, counts add up', () => {
    const level = fc.constantFrom(...LEVELS);
    const kind = fc.constantFrom(...HEALTH_KINDS);
    fc.assert(
      fc.property(fc.array(fc.tuple(level, kind), { maxLength: 40 }), fc.integer({ min: 0, max: 20 }), (specs, limit) => {
        const members = specs.map(([l, k], i) => row(`m-${i + 1}`, l, k));
        const snapshot = rollup({ members, clusters: [], now: NOW, issueLimit: limit });
        const { counts } = snapshot.summary;
        expect(counts.red + counts.amber + counts.green + counts.grey).toBe(members.length);
        const expected = members.some((m) => m.status === 'red') ? 'red' : members.some((m) => m.status === 'amber') ? 'amber' : 'green';
        expect(snapshot.summary.status).toBe(expected);
        const ranks = snapshot.members.map((m) => levelRank(m.status));
        expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
        expect(snapshot.summary.issues.length + snapshot.summary.hiddenIssues).toBe(counts.red + counts.amber);
        expect(snapshot.summary.issues.length).toBeLessThanOrEqual(limit);
        expect(FleetSnapshotSchema.safeParse(snapshot).success).toBe(true);
      }),
    );
  });
});
