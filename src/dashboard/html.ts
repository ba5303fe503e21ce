import { checksCell } from '../health/render-text.js';
import type { FleetSnapshot } from '../protocol/health.js';
import { PAGE_STYLE } from './headers.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Every value that reaches the page goes through this: member errors are arbitrary text. */
export function escapeHtml(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function cell(value: string | number | null | undefined, cls?: string): string {
  return `<td${cls ? ` class="${escapeHtml(cls)}"` : ''}>${escapeHtml(value === null || value === undefined || value === '' ? '-' : value)}</td>`;
}

function ago(ms: number | null): string {
  return ms === null ? '-' : `${(ms / 1000).toFixed(1)} s ago`;
}

/** The read-only fleet page: plain HTML, readable without JavaScript, refreshed by a meta tag. */
export function renderPage(snapshot: FleetSnapshot, refreshSeconds: number): string {
  const { summary } = snapshot;
  const issues = summary.issues
    .map(
      (i) =>
        `<li><span class="${i.level}">${escapeHtml(i.level.toUpperCase())}</span> ${escapeHtml(i.message)}${i.action ? `<br><small>next: <code>${escapeHtml(i.action)}</code></small>` : ''}</li>`,
    )
    .join('');
  const multiHost = snapshot.hosts !== undefined;
  const clusterRows = snapshot.clusters
    .map(
      (c) =>
        `<tr>${multiHost ? cell(c.host) : ''}${cell(c.name)}${cell(c.status, c.status)}${cell(c.members)}${cell(c.running)}${cell(c.holder?.pid)}${cell(ago(c.holder?.heartbeatAgeMs ?? null))}${cell(checksCell(c.checks))}</tr>`,
    )
    .join('');
  const memberRows = snapshot.members
    .map(
      (m) =>
        `<tr>${multiHost ? cell(m.host) : ''}${cell(m.name)}${cell(m.status, m.status)}${cell(m.health)}${cell(m.state)}${cell(m.ip)}${cell(m.pid)}${cell(ago(m.heartbeatAgeMs))}${cell(checksCell(m.checks))}${cell(m.problem)}</tr>`,
    )
    .join('');
  const host = multiHost ? '<th>host</th>' : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${refreshSeconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleetbox: ${escapeHtml(summary.status.toUpperCase())}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<h1>fleetbox fleet</h1>
<p class="banner ${summary.status}"><span class="${summary.status}">${escapeHtml(summary.message)}</span>${
    summary.suggestedNextAction ? `<br>next: <code>${escapeHtml(summary.suggestedNextAction)}</code>` : ''
  }</p>
<p><small>generated ${escapeHtml(snapshot.generatedAt)}; refreshes every ${refreshSeconds} s; JSON at <code>/api/fleet</code></small></p>
${issues ? `<h2>Issues</h2><ul>${issues}</ul>${summary.hiddenIssues > 0 ? `<p><small>${summary.hiddenIssues} more not listed</small></p>` : ''}` : ''}
<h2>Clusters</h2>
<table><thead><tr>${host}<th>cluster</th><th>status</th><th>members</th><th>running</th><th>holder</th><th>heartbeat</th><th>checks</th></tr></thead><tbody>${clusterRows}</tbody></table>
<h2>Members</h2>
<table><thead><tr>${host}<th>member</th><th>status</th><th>health</th><th>state</th><th>ip</th><th>pid</th><th>heartbeat</th><th>checks</th><th>problem</th></tr></thead><tbody>${memberRows}</tbody></table>
</body>
</html>
`;
}
