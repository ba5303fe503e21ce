import { readFileSync, statSync } from 'node:fs';

/** The last lines of a log file, flattened for a one-line error message. */
export function tailText(path: string, lines = 5): string {
  try {
    const size = statSync(path).size;
    const text = readFileSync(path, 'utf8').slice(Math.max(0, size - 8_192));
    const last = text.split('\n').filter(Boolean).slice(-lines).join(' | ');
    return last ? `${last} (log: ${path})` : `see ${path}`;
  } catch {
    return `see ${path}`;
  }
}
