import type { MemberRef, MemberStateFile } from '../store/members.js';
import { errorSummary } from './error-summary.js';
import { isActiveState, kindRank, levelRank, worst, type HealthKind, type Level } from '../protocol/health-levels.js';
import type { ProbeResult } from './probe.js';
import type { ConfigSummary } from './scan.js';
import type { CheckResult, ClusterHealth, FleetSnapshot, HostInfo, Issue, MemberHealth, Warning } from '../protocol/health.js';

/**
 * The one place that decides what colour a member, a cluster and the fleet are, and what to do
 * about it. `status`, the dashboard and the multi-host merge all end here.
 */

export const DEFAULT_GRACE_MS = 15_000;
export const DEFAULT_ISSUE_LIMIT = 10;

/** Everything known about one member at one moment, gathered by the fan-out (local.ts). */
export interface MemberObservation {
  ref: MemberRef;
  config: ConfigSummary | undefined;
  probe: ProbeResult;
  /** state.json, the last state its holder wrote. */
  disk: MemberStateFile | undefined;
  /** The holder named by the member's pidfile, when that process is alive with its start time. */
  holder: { pid: number; procState: string | null } | undefined;
  /** The holder's last heartbeat, only when the heartbeat file belongs to a live holder. */
  heartbeat: { at: string; staleAfterMs: number } | undefined;
  /** The holder's latest checks of this member. */
  checks: CheckResult[];
  timeoutMs: number;
}

export interface ClassifyOptions {
  now: number;
  /** A member this young (since it started or re-joined) is amber, not red, while checks fail. */
  graceMs?: number;
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

type Verdict = { status: Level; health: HealthKind; problem: string | null; action: string | null };

const verdict = (status: Level, health: HealthKind, problem: string | null = null, action: string | null = null): Verdict => ({
  status,
  health,
  problem,
  action,
});

/** What to do about a failing check, by checker. */
function checkAction(check: CheckResult, name: string): string {
  switch (check.name) {
    case 'process-alive':
    case 'port':
    case 'hypervisor':
    case 'agent':
      return `fleetbox logs ${name}, then fleetbox down ${name} && fleetbox up ${name}`;
    case 'fault':
      return `a test injected this on purpose; to end it: fleetbox fault heal ${name}`;
    case 'ssh':
      return `fleetbox down ${name} && fleetbox up ${name} (starts its SSH server again); exec and cp work meanwhile`;
    default:
      return `fleetbox logs ${name}`;
  }
}

function judgeAnswered(obs: MemberObservation, status: MemberHealth, now: number, graceMs: number, heartbeatAge: number | null): Verdict {
  const { name, cluster } = obs.ref;
  switch (status.state) {
    case 'error':
      return verdict('red', 'error', `failed: ${errorSummary(status.error) || 'unknown error'}`, `fleetbox logs ${name}, then fleetbox up ${name}`);
    case 'downloading':
      return verdict('amber', 'grace', `preparing${status.progress ? `: ${status.progress}` : ''}`);
    case 'starting':
      return verdict('amber', 'grace', 'starting');
    case 'stopping':
      return verdict('amber', 'stopping', 'stopping');
    case 'stopped':
      return verdict('grey', 'stopped');
    case 'running':
      break;
  }
  const young = now - Date.parse(status.since) < graceMs;
  if (obs.heartbeat && heartbeatAge !== null && heartbeatAge > obs.heartbeat.staleAfterMs) {
    // The holder answers, so it is not wedged; its health loop or its writes are stuck.
    return verdict(
      'amber',
      'no_heartbeat',
      `holder answers but its heartbeat is ${seconds(heartbeatAge)} old (threshold ${seconds(obs.heartbeat.staleAfterMs)}): its health loop is stuck or cannot write`,
      `look at the holder log of cluster ${cluster}`,
    );
  }
  if (!obs.heartbeat) {
    return young
      ? verdict('amber', 'grace', 'just started; no health checks yet')
      : verdict('amber', 'no_heartbeat', 'holder answers but writes no heartbeat: health checks are not running', `fleetbox down ${cluster} && fleetbox up ${cluster} (restarts the holder)`);
  }
  const failing = obs.checks.find((c) => c.status === 'fail');
  if (failing) {
    const problem = `check ${failing.name} failing: ${failing.detail}`;
    return young ? verdict('amber', 'grace', `just started; ${problem}`) : verdict('red', 'failing', problem, checkAction(failing, name));
  }
  const warning = obs.checks.find((c) => c.status === 'warn');
  if (warning) return verdict('amber', 'degraded', `check ${warning.name}: ${warning.detail}`, checkAction(warning, name));
  if (obs.checks.length === 0) return young ? verdict('amber', 'grace', 'just started; no health checks yet') : verdict('green', 'healthy');
  return verdict('green', 'healthy');
}

function judgeSilent(obs: MemberObservation, heartbeatAge: number | null): Verdict {
  const { name, cluster } = obs.ref;
  const { probe } = obs;
  const why = probe.ok ? '' : probe.message;
  if (obs.holder) {
    const pid = obs.holder.pid;
    if (obs.holder.procState === 'T' || obs.holder.procState === 't') {
      return verdict('red', 'stale', `holder ${pid} is stopped (SIGSTOP or a debugger) and did not answer: ${why}`, `kill -CONT ${pid}`);
    }
    if (obs.heartbeat && heartbeatAge !== null && heartbeatAge > obs.heartbeat.staleAfterMs) {
      return verdict(
        'red',
        'stale',
        `holder ${pid} did not answer (${why}) and its last heartbeat is ${seconds(heartbeatAge)} old (threshold ${seconds(obs.heartbeat.staleAfterMs)}): it is wedged`,
        `kill -9 ${pid} (holder of ${cluster}), then fleetbox up ${cluster}`,
      );
    }
    const beat = heartbeatAge === null ? 'no heartbeat yet' : `heartbeat ${seconds(heartbeatAge)} ago`;
    return verdict('amber', 'unresponsive', `holder ${pid} is alive (${beat}) but did not answer: ${why}`, `retry; if it persists: fleetbox status ${name}`);
  }
  const last = obs.disk?.state;
  if (last === 'error') return verdict('red', 'error', `failed: ${errorSummary(obs.disk?.error) || 'unknown error'}`, `fleetbox logs ${name}, then fleetbox up ${name}`);
  if (last !== undefined && isActiveState(last)) {
    return verdict('red', 'holder_gone', `last recorded as ${last} but its holder is gone (crashed or killed)`, `fleetbox up ${name}`);
  }
  return verdict('grey', 'stopped');
}

/** One member's row: colour, reason, next action, and what is known of its state. */
export function classifyMember(obs: MemberObservation, options: ClassifyOptions): MemberHealth {
  const now = options.now;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const heartbeatAge = obs.heartbeat ? Math.max(0, now - Date.parse(obs.heartbeat.at)) : null;
  const answered = obs.probe.ok ? obs.probe.status : undefined;
  const disk = obs.disk;
  const holderAlive = obs.holder !== undefined;
  const diskState = disk?.state ?? 'stopped';
  // Without an answer, nothing without a live holder can be running; with a live (silent)
  // holder the last recorded state is the best guess.
  const state = answered?.state ?? (holderAlive ? diskState : diskState === 'error' ? 'error' : 'stopped');
  const error = answered ? answered.error : disk?.error;
  const progress = answered?.progress;
  const row: MemberHealth = {
    name: obs.ref.name,
    cluster: obs.ref.cluster,
    status: 'grey',
    health: 'stopped',
    problem: null,
    action: null,
    state,
    backend: obs.config?.backend ?? 'unknown',
    ip: answered?.ip ?? disk?.ip ?? null,
    pid: answered ? answered.pid : holderAlive ? (disk?.pid ?? null) : null,
    running: answered ? answered.running : holderAlive && diskState === 'running',
    holderPid: obs.holder?.pid ?? null,
    source: answered ? 'holder' : 'disk',
    since: answered?.since ?? disk?.since ?? obs.config?.createdAt ?? new Date(now).toISOString(),
    createdAt: obs.config?.createdAt ?? null,
    ...(error !== undefined && (state === 'error' || answered) && { error }),
    ...(progress !== undefined && { progress }),
    lastHeartbeat: obs.heartbeat?.at ?? null,
    heartbeatAgeMs: heartbeatAge,
    staleAfterMs: obs.heartbeat?.staleAfterMs ?? null,
    checks: obs.checks,
  };
  const judged = answered ? judgeAnswered(obs, row, now, graceMs, heartbeatAge) : judgeSilent(obs, heartbeatAge);
  return { ...row, ...judged };
}

/** The colour a set of holder-wide checks gives its cluster. */
export function checksLevel(checks: CheckResult[]): Level {
  if (checks.some((c) => c.status === 'fail')) return 'red';
  if (checks.some((c) => c.status === 'warn')) return 'amber';
  return 'green';
}

/** A cluster's row from its members' rows plus its holder's own checks. */
export function summariseCluster(
  name: string,
  members: MemberHealth[],
  holder: ClusterHealth['holder'],
  checks: CheckResult[],
): ClusterHealth {
  const memberLevel = members.reduce<Level>((level, m) => worst(level, m.status), 'grey');
  const status = checks.length > 0 && memberLevel !== 'grey' ? worst(memberLevel, checksLevel(checks)) : memberLevel;
  const host = members[0]?.host;
  return {
    name,
    ...(host !== undefined && { host }),
    status,
    backend: members[0]?.backend ?? 'unknown',
    members: members.length,
    running: members.filter((m) => m.running).length,
    holder,
    checks,
  };
}

function at(host: string | undefined, text: string): string {
  return host === undefined ? text : `on ${host}: ${text}`;
}

function issuesOf(members: MemberHealth[], clusters: ClusterHealth[]): Issue[] {
  const issues: Issue[] = [];
  for (const m of members) {
    if (m.status !== 'red' && m.status !== 'amber') continue;
    issues.push({
      level: m.status,
      kind: m.health,
      subject: m.name,
      ...(m.host !== undefined && { host: m.host }),
      message: `${m.name}: ${m.problem ?? m.health}`,
      action: m.action === null ? null : at(m.host, m.action),
    });
  }
  for (const c of clusters) {
    if (c.status === 'grey') continue;
    for (const check of c.checks) {
      if (check.status !== 'fail' && check.status !== 'warn') continue;
      issues.push({
        level: check.status === 'fail' ? 'red' : 'amber',
        kind: check.status === 'fail' ? 'failing' : 'degraded',
        subject: c.name,
        ...(c.host !== undefined && { host: c.host }),
        message: `cluster ${c.name}: check ${check.name}: ${check.detail}`,
        action: check.name === 'disk-space' ? at(c.host, 'free space in the fleetbox store (fleetbox rm of clusters you no longer need)') : null,
      });
    }
  }
  return issues;
}

function byUrgency(a: Issue, b: Issue): number {
  return levelRank(a.level) - levelRank(b.level) || kindRank(a.kind) - kindRank(b.kind) || a.subject.localeCompare(b.subject);
}

export function sortMembers(members: MemberHealth[]): MemberHealth[] {
  return [...members].sort(
    (a, b) =>
      levelRank(a.status) - levelRank(b.status) ||
      kindRank(a.health) - kindRank(b.health) ||
      (a.host ?? '').localeCompare(b.host ?? '') ||
      a.cluster.localeCompare(b.cluster) ||
      a.name.localeCompare(b.name, undefined, { numeric: true }),
  );
}

export interface RollupInput {
  members: MemberHealth[];
  clusters: ClusterHealth[];
  warnings?: Warning[];
  /** Issues that are about neither a member nor a cluster (a host that did not answer). */
  extraIssues?: Issue[];
  hosts?: HostInfo[];
  now: number;
  issueLimit?: number;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The fleet's one verdict: red before amber before green, stale first, with the next action. */
export function rollup(input: RollupInput): FleetSnapshot {
  const members = sortMembers(input.members);
  const clusters = [...input.clusters].sort(
    (a, b) => levelRank(a.status) - levelRank(b.status) || (a.host ?? '').localeCompare(b.host ?? '') || a.name.localeCompare(b.name),
  );
  const all = [...(input.extraIssues ?? []), ...issuesOf(members, clusters)].sort(byUrgency);
  const limit = input.issueLimit ?? DEFAULT_ISSUE_LIMIT;
  const shown = all.slice(0, limit);
  const hidden = all.length - shown.length;
  const count = (level: Level) => members.filter((m) => m.status === level).length;
  const counts = {
    clusters: clusters.length,
    members: members.length,
    red: count('red'),
    amber: count('amber'),
    green: count('green'),
    grey: count('grey'),
    stale: members.filter((m) => m.health === 'stale').length,
  };
  const status: 'red' | 'amber' | 'green' = all.some((i) => i.level === 'red') ? 'red' : all.length > 0 ? 'amber' : 'green';
  const parts: string[] = [];
  const otherIssues = all.filter((i) => !members.some((m) => m.name === i.subject && m.host === i.host));
  if (counts.members === 0 && otherIssues.length === 0) {
    parts.push('no members');
  } else {
    const attention = counts.red + counts.amber;
    if (counts.red > 0) parts.push(`${counts.red} of ${plural(counts.members, 'member')} need${counts.red === 1 ? 's' : ''} action${counts.stale > 0 ? ` (${counts.stale} stale)` : ''}`);
    if (counts.amber > 0) parts.push(`${counts.amber} to watch`);
    if (attention === 0 && counts.members > 0) {
      parts.push(counts.green > 0 ? `all ${plural(counts.green, 'running member')} healthy` : `no member running`);
    } else if (counts.green > 0) {
      parts.push(`${counts.green} healthy`);
    }
    if (counts.grey > 0) parts.push(`${counts.grey} stopped`);
    if (otherIssues.length > 0) parts.push(plural(otherIssues.length, 'other issue'));
  }
  if (hidden > 0) parts.push(`${plural(hidden, 'more issue')} not listed (see members[] or --json)`);
  return {
    schema: 'fleetbox.fleet/v1',
    generatedAt: new Date(input.now).toISOString(),
    summary: {
      status,
      message: `${status.toUpperCase()}: ${parts.join(', ')}`,
      issues: shown,
      hiddenIssues: hidden,
      suggestedNextAction: all[0]?.action ?? (counts.members === 0 ? 'fleetbox up demo -n 3 --backend process' : null),
      counts,
    },
    clusters,
    members,
    warnings: input.warnings ?? [],
    ...(input.hosts && { hosts: input.hosts }),
  };
}
