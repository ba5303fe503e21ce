import { toFleetboxError, type ErrorCode } from '../protocol/errors.js';
import { inertText } from '../health/inert.js';

/** Exit codes, documented in README: one place maps error codes to them. */
export const EXIT = { ok: 0, runtime: 1, usage: 2, notFound: 3 } as const;

const USAGE: ReadonlySet<ErrorCode> = new Set(['usage', 'invalid_name', 'path_too_long', 'bad_request']);
const NOT_FOUND: ReadonlySet<ErrorCode> = new Set(['not_found', 'unknown_member']);

export function exitCodeFor(code: ErrorCode): number {
  if (USAGE.has(code)) return EXIT.usage;
  if (NOT_FOUND.has(code)) return EXIT.notFound;
  return EXIT.runtime;
}

/** One line on stderr (a stack only with FLEETBOX_DEBUG=1) and the exit code for it. */
export function reportError(error: unknown): number {
  const failure = toFleetboxError(error);
  // A failed boot quotes the guest's console: escape sequences in it never reach the terminal.
  const [firstLine = '', ...rest] = failure.message.split('\n').map(inertText);
  process.stderr.write(`fleetbox: ${firstLine}\n`);
  if (rest.length > 0) process.stderr.write(rest.map((line) => `  ${line}`).join('\n') + '\n');
  if (process.env.FLEETBOX_DEBUG === '1') process.stderr.write(`${(failure.cause as Error | undefined)?.stack ?? failure.stack}\n`);
  return exitCodeFor(failure.code);
}
