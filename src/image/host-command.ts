import { runCommand } from '../host/run-command.js';
import { FleetboxError, type ErrorCode } from '../protocol/errors.js';

export interface HostCommandOptions {
  /** Bytes or text for the command's standard input. */
  input?: string | Uint8Array;
  cwd?: string;
  timeoutMs?: number;
  /** Code of the FleetboxError thrown when the command fails (default `io`). */
  failCode?: ErrorCode;
  /** What to tell the user to do when it fails, appended to the message. */
  hint?: string;
  env?: Record<string, string>;
}

/**
 * Runs a host tool (apt-get, dpkg, cpio, ldd, ssh-keygen …) and returns its standard output.
 * A tool that is not installed becomes `missing_prerequisite` with the setup command to run;
 * any other failure a one-line error naming the tool and the first line of what it said.
 */
export async function hostCommand(file: string, args: readonly string[], options: HostCommandOptions = {}): Promise<string> {
  const result = await runCommand(file, args, {
    ...(options.input !== undefined && { input: options.input }),
    ...(options.cwd !== undefined && { cwd: options.cwd }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    ...(options.env !== undefined && { env: { ...process.env, ...options.env } }),
  });
  if (result.exitCode === 0) return result.stdout;
  if (result.missing) {
    throw new FleetboxError('missing_prerequisite', `${file} is not installed; run: fleetbox setup --yes`);
  }
  const said = (result.stderr || result.stdout).trim().split('\n').filter(Boolean).pop() ?? '';
  const how = result.timedOut ? `timed out after ${options.timeoutMs} ms` : `failed (exit ${result.exitCode ?? result.signal})`;
  const hint = options.hint ? `; ${options.hint}` : '';
  throw new FleetboxError(options.failCode ?? 'io', `${file} ${args.slice(0, 3).join(' ')} ${how}${said ? `: ${said}` : ''}${hint}`);
}
