import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { withLock } from '../../dist/store/lock.js';
import { leakStats } from './leftovers.js';

/**
 * docs/reliability.md is written by the suite from its own run, never by hand. Each test file
 * keeps a PartReport; its afterAll merges that part into the document under a lock (files run in
 * parallel workers). The data of every part rides along in the document itself as a JSON comment,
 * so a file run on its own updates its part and keeps the others.
 */
export const REPORT_PATH = fileURLToPath(new URL('../../docs/reliability.md', import.meta.url));
const LOCK_PATH = '/tmp/fbx-reliability-report.lock';
const DATA_START = '<!-- reliability-data';
const DATA_END = '-->';

export interface FaultRow {
  fault: string;
  runs: number;
  held: string;
  ok: boolean;
}

export interface PartData {
  /** Sort key and identity of the part, e.g. '1a'. */
  part: string;
  title: string;
  measuredAt: string;
  durationMs: number;
  rows: FaultRow[];
  figures: Record<string, string>;
  /** Summed over parts in the Numbers table (e.g. crash injections). */
  counters: Record<string, number>;
  /** Unioned over parts (e.g. the crash points a part covered). */
  covered: string[];
  leakScans: number;
  leaks: number;
  notes: string[];
}

export class PartReport {
  private readonly started = Date.now();
  private readonly rows = new Map<string, FaultRow>();
  private readonly figures: Record<string, string> = {};
  private readonly counters: Record<string, number> = {};
  private readonly covered = new Set<string>();
  private readonly notes: string[] = [];

  constructor(
    readonly part: string,
    readonly title: string,
  ) {}

  /** Counts `runs` injections of `fault`; `ok` false marks the row FAILED in the report. */
  add(fault: string, held: string, runs = 1, ok = true): void {
    const row = this.rows.get(fault) ?? { fault, runs: 0, held, ok: true };
    row.runs += runs;
    row.ok &&= ok;
    this.rows.set(fault, row);
  }

  /** Runs one injection: counted as held only if `fn` finishes without throwing. */
  async check<T>(fault: string, held: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.add(fault, held);
      return result;
    } catch (error) {
      this.add(fault, held, 1, false);
      throw error;
    }
  }

  figure(name: string, value: string | number): void {
    this.figures[name] = String(value);
  }

  count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  cover(name: string): void {
    this.covered.add(name);
  }

  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  data(): PartData {
    return {
      part: this.part,
      title: this.title,
      measuredAt: new Date().toISOString(),
      durationMs: Date.now() - this.started,
      rows: [...this.rows.values()],
      figures: { ...this.figures },
      counters: { ...this.counters },
      covered: [...this.covered].sort(),
      leakScans: leakStats.scans,
      leaks: leakStats.leaks,
      notes: [...this.notes],
    };
  }

  /** Merges this part into docs/reliability.md. */
  async flush(): Promise<void> {
    const data = this.data();
    await withLock(LOCK_PATH, async () => {
      const parts = readParts();
      parts.set(data.part, data);
      const tmp = `${REPORT_PATH}.${process.pid}.tmp`;
      writeFileSync(tmp, render([...parts.values()].sort((a, b) => a.part.localeCompare(b.part))));
      renameSync(tmp, REPORT_PATH);
    });
  }
}

function readParts(): Map<string, PartData> {
  const parts = new Map<string, PartData>();
  let text: string;
  try {
    text = readFileSync(REPORT_PATH, 'utf8');
  } catch {
    return parts;
  }
  const start = text.indexOf(DATA_START);
  const end = text.indexOf(DATA_END, start);
  if (start === -1 || end === -1) return parts;
  try {
    for (const part of JSON.parse(text.slice(start + DATA_START.length, end)) as PartData[]) parts.set(part.part, part);
  } catch {
    // a hand-edited or torn document is regenerated from this run alone
  }
  return parts;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function render(parts: PartData[]): string {
  const figure = (name: string) => parts.map((p) => p.figures[name]).find((v) => v !== undefined) ?? 'not run';
  const counter = (name: string) => parts.reduce((n, p) => n + (p.counters[name] ?? 0), 0);
  const covered = [...new Set(parts.flatMap((p) => p.covered))].sort();
  const side = (prefix: string) => covered.filter((c) => c.startsWith(prefix)).length;
  const scans = parts.reduce((n, p) => n + p.leakScans, 0);
  const leaks = parts.reduce((n, p) => n + p.leaks, 0);
  const failed = parts.flatMap((p) => p.rows.filter((r) => !r.ok).map((r) => `${p.title}: ${r.fault}`));
  const injections = parts.reduce((n, p) => n + p.rows.reduce((m, r) => m + r.runs, 0), 0);
  const runs = new Set(parts.map((p) => p.measuredAt.slice(0, 13)));
  const lines = [
    '# Reliability report',
    '',
    'Generated by the reliability suite (`npx vitest run test/reliability`, writer: `test/reliability/report.ts`)',
    'from its own run: every row counts faults the suite really injected and checked. Do not edit by hand.',
    '',
    `Machine: ${cpus().length} cores, node ${process.version}, ${process.platform}. Backends: process members for the`,
    'crash points, fuzzing, concurrency, permissions and disk-full parts; real qemu VMs for the qemu crash points and soak.',
    '`assertNoLeftovers()` checks processes, run/, pidfiles, network namespaces and links of the store in every part.',
    ...(runs.size > 1 ? ['', '_Parts were measured in different runs (a file was re-run on its own); see each part\'s time._'] : []),
    '',
    '## Numbers',
    '',
    '| figure | value |',
    '|---|---|',
    `| crash points covered | ${covered.length} (holder ${side('holder-')}, client ${side('client-')}): ${covered.join(', ')} |`,
    `| crash injections (kill -9 at a named point) | ${counter('crash injections')} |`,
    `| fuzz cases run against a live holder | ${counter('fuzz cases')} |`,
    `| soak cycles (process cluster) | ${figure('soak cycles')} |`,
    `| soak cycles (qemu cluster) | ${figure('qemu soak cycles')} |`,
    `| holder fd drift (end vs after cycle 1) | ${figure('fd drift')} |`,
    `| holder RSS drift (end vs after cycle 1) | ${figure('RSS drift')} |`,
    `| leftover scans (processes, run/, pidfiles, namespaces, links) | ${scans} |`,
    `| leaks found | **${leaks}** |`,
    `| faults injected in all | ${injections} |`,
    `| faults that did not hold | ${failed.length === 0 ? '0' : `**${failed.length}**: ${cell(failed.join('; '))}`} |`,
    '',
  ];
  for (const part of parts) {
    lines.push(`## ${part.part}. ${part.title}`, '');
    lines.push(`Measured ${part.measuredAt} in ${(part.durationMs / 1000).toFixed(1)} s; ${part.leakScans} leftover scans, ${part.leaks} leaks.`, '');
    const figures = Object.entries(part.figures);
    if (figures.length > 0) {
      lines.push(figures.map(([k, v]) => `${k}: **${cell(v)}**`).join(' · '), '');
    }
    lines.push('| fault injected | times | what held | result |', '|---|---:|---|---|');
    for (const row of part.rows) {
      lines.push(`| ${cell(row.fault)} | ${row.runs} | ${cell(row.held)} | ${row.ok ? 'held' : '**FAILED**'} |`);
    }
    if (part.notes.length > 0) lines.push('', ...part.notes.map((n) => `- ${n}`));
    lines.push('');
  }
  lines.push(DATA_START, JSON.stringify(parts, null, 1), DATA_END, '');
  return lines.join('\n');
}
