/**
 * The one error class of fleetbox. Every public function either returns a typed result or throws
 * a FleetboxError whose `code` says what went wrong; the CLI maps codes to exit codes in one place
 * (src/cli/exit.ts) and the wire protocol carries the same codes in error replies.
 */
export const ERROR_CODES = [
  // wire protocol (DESIGN §4)
  'bad_request',
  'unknown_command',
  'unknown_member',
  'already_running',
  'version_mismatch',
  'busy',
  'internal',
  // client and store
  'invalid_name',
  'usage',
  'not_found',
  'not_running',
  'boot_failed',
  'boot_timeout',
  'prepare_timeout',
  'exec_timeout',
  'holder_failed',
  'unreachable',
  /** A holder accepted the connection but did not answer in time: stopped, wedged or fd-starved. */
  'unresponsive',
  'path_too_long',
  'missing_prerequisite',
  'state_corrupt',
  'io',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FleetboxError extends Error {
  override readonly name = 'FleetboxError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isFleetboxError(error: unknown, code?: ErrorCode): error is FleetboxError {
  return error instanceof FleetboxError && (code === undefined || error.code === code);
}

/** Wraps anything thrown into a FleetboxError, keeping the original as `cause`. */
export function toFleetboxError(error: unknown, fallback: ErrorCode = 'internal'): FleetboxError {
  if (error instanceof FleetboxError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FleetboxError(fallback, message, { cause: error });
}
