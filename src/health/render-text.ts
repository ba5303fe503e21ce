import type { Level } from '../protocol/health-levels.js';
import type { CheckResult, FleetSnapshot, MemberHealth } from '../protocol/health.js';
import { inertText } from './inert.js';

/**
 * Human rendering of a snapshot for `fleetbox status` (stdout); warnings go to stderr by the caller.
 * Free text (errors, check details, issues) can quote a guest's console, so it is made inert
 * here, whatever its source; remote answers were already made inert where they entered.
 */

const inert = (text: string | null | undefined): string => inertText(text ?? '');

const COLOURS: Record<Level, string> = { red: '\x1b[31m', amber: '\x1b[33m', green: '\x1b[32m', grey: '\x1b[90m' };

export interface TextOptions {
  colour: boolean;
  now?: number;
}

function paint(level: Level, text: string, options: TextOptions): string {
  return options.colour ? `${COLOURS[level]}${text}\x1b[0m` : text;
}

function ago(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s ago` : `${Math.round(ms / 1000)}s ago`;
}

function table(headers: string[], rows: string[][], levelColumn: number, levels: Level[], options: TextOptions): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (row: string[], level?: Level) =>
    row
      .map((cell, i) => {
        const padded = i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0);
        return i === levelColumn && level ? paint(level, padded, options) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map((row, i) => line(row, levels[i]))];
}

export function checksCell(checks: CheckResult[]): string {
  const relevant = checks.filter((c) => c.status !== 'skip');
  if (relevant.length === 0) return '-';
  const bad = relevant.filter((c) => c.status !== 'pass');
  if (bad.length === 0) return `${relevant.length}/${relevant.length} ok`;
  return bad.map((c) => `${c.name}:${c.status}`).join(',');
}

export function renderFleet(snapshot: FleetSnapshot, options: TextOptions): string {
  const { summary } = snapshot;
  const out: string[] = [paint(summary.status, summary.message, options)];
  if (summary.suggestedNextAction) out.push(`next: ${summary.suggestedNextAction}`);
  if (summary.issues.length > 0) {
    out.push('', 'ISSUES (most urgent first)');
    for (const issue of summary.issues) {
      const where = issue.host ? `[${issue.host}] ` : '';
      out.push(`  ${paint(issue.level, issue.level.toUpperCase().padEnd(5), options)}  ${where}${inert(issue.message)}`);
      if (issue.action) out.push(`         -> ${inert(issue.action)}`);
    }
    if (summary.hiddenIssues > 0) out.push(`  … and ${summary.hiddenIssues} more (fleetbox status --json lists every member)`);
  }
  const multiHost = snapshot.hosts !== undefined;
  if (snapshot.clusters.length > 0) {
    out.push('');
    const headers = [...(multiHost ? ['HOST'] : []), 'CLUSTER', 'STATUS', 'MEMBERS', 'RUNNING', 'HOLDER', 'HEARTBEAT', 'CHECKS'];
    const rows = snapshot.clusters.map((c) => [
      ...(multiHost ? [c.host ?? '-'] : []),
      c.name,
      c.status,
      String(c.members),
      String(c.running),
      c.holder ? String(c.holder.pid) : '-',
      ago(c.holder?.heartbeatAgeMs ?? null),
      checksCell(c.checks),
    ]);
    out.push(...table(headers, rows, multiHost ? 2 : 1, snapshot.clusters.map((c) => c.status), options));
  }
  if (snapshot.members.length > 0) {
    out.push('');
    const headers = [...(multiHost ? ['HOST'] : []), 'MEMBER', 'STATUS', 'HEALTH', 'STATE', 'IP', 'PID', 'HEARTBEAT', 'CHECKS'];
    const rows = snapshot.members.map((m) => [
      ...(multiHost ? [m.host ?? '-'] : []),
      m.name,
      m.status,
      m.health,
      m.state,
      m.ip ?? '-',
      m.pid === null ? '-' : String(m.pid),
      ago(m.heartbeatAgeMs),
      checksCell(m.checks),
    ]);
    out.push(...table(headers, rows, multiHost ? 2 : 1, snapshot.members.map((m) => m.status), options));
  }
  if (snapshot.hosts) {
    out.push('');
    const rows = snapshot.hosts.map((h) => [
      h.host,
      h.ok ? 'ok' : 'down',
      h.skewMs === null ? '-' : `${h.skewMs >= 0 ? '+' : ''}${Math.round(h.skewMs)} ms`,
      h.rttMs === null ? '-' : `${h.rttMs.toFixed(1)} ms`,
      inert(h.error),
    ]);
    out.push(...table(['HOST', 'ANSWER', 'CLOCK SKEW', 'RTT', 'ERROR'], rows, -1, [], options));
  }
  return out.join('\n') + '\n';
}

/** One member in detail (`fleetbox status web-2`). */
export function renderMember(m: MemberHealth, options: TextOptions): string {
  const since = options.now !== undefined ? ` (${ago(options.now - Date.parse(m.since))})` : '';
  const lines = [
    `${m.name}  ${m.state.toUpperCase()}  ${paint(m.status, `${m.status} (${m.health})`, options)}${m.source === 'disk' ? '  (no answer from a holder; last state on disk)' : ''}`,
    `  cluster    ${m.cluster}    backend ${m.backend}`,
    `  ip         ${m.ip ?? '-'}`,
    `  pid        ${m.pid ?? '-'}    holder ${m.holderPid ?? '-'}`,
    `  since      ${m.since}${since}`,
    `  heartbeat  ${m.lastHeartbeat ? `${ago(m.heartbeatAgeMs)} (stale after ${((m.staleAfterMs ?? 0) / 1000).toFixed(1)}s)` : '-'}`,
    ...m.checks.map((c) => `  check      ${c.name.padEnd(14)} ${c.status.padEnd(4)}  ${inert(c.detail)}`),
    // The whole error: after a failed boot its later lines are the member's last output, the reason.
    ...(m.error ? m.error.split('\n').map(inert).filter(Boolean).map((line, i) => `${i === 0 ? '  error      ' : '             '}${line}`) : []),
    ...(m.progress ? [`  progress   ${inert(m.progress)}`] : []),
    ...(m.problem ? [`  problem    ${inert(m.problem)}`] : []),
    ...(m.action ? [`  next       ${inert(m.action)}`] : []),
  ];
  return lines.join('\n') + '\n';
}
