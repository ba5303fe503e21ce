import { Store } from '../store/layout.js';
import { EXIT } from './exit.js';

/**
 * A reader that stopped reading (`| head`) closes the pipe, and the next write fails with EPIPE
 * from an 'error' event nobody handles: a stack trace and exit 1 for output the user chose to cut.
 * Nothing written later can reach anyone, so end at once and quietly, as a SIGPIPE'd tool does.
 */
export function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.ok);
      throw error;
    });
  }
}

export function openStore(): Store {
  return new Store().ensure();
}

/** Machine output: pure JSON on stdout, nothing else mixed in. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Human notices and progress go to stderr so stdout stays clean for pipes and --json. */
export function notice(message: string): void {
  process.stderr.write(message + '\n');
}

/** A plain aligned table; empty cells show as "-". */
export function printTable(headers: string[], rows: (string | number | null | undefined)[][]): void {
  const cells = rows.map((row) => row.map((cell) => (cell === null || cell === undefined || cell === '' ? '-' : String(cell))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ');
  process.stdout.write([line(headers), ...cells.map(line)].join('\n') + '\n');
}

/** "3s", "5m", "2h", "4d" since an ISO time. */
export function age(since: string | null | undefined, now = Date.now()): string {
  if (!since) return '-';
  const seconds = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
