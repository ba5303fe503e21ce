import { tailLines } from '../host/tail.js';

/** The last lines of a log file, flattened for a one-line error message. */
export function tailText(path: string, lines = 5): string {
  const last = tailLines(path, lines).join(' | ');
  return last ? `${last} (log: ${path})` : `see ${path}`;
}
