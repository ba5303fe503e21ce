import { runCommand } from '../host/run-command.js';
import { FleetboxError } from '../protocol/errors.js';

/**
 * Runs iproute2's `ip` and returns its standard output. Missing `ip` is a missing prerequisite;
 * other failures name the command and what `ip` said, which is usually the whole story
 * ("File exists", "Operation not permitted").
 */
export async function ip(args: readonly string[], input?: string): Promise<string> {
  const result = await runCommand('ip', args, { timeoutMs: 30_000, ...(input !== undefined && { input }) });
  if (result.exitCode === 0) return result.stdout;
  if (result.missing) {
    throw new FleetboxError('missing_prerequisite', 'ip (iproute2) is not installed; run: fleetbox setup --yes');
  }
  const said = result.stderr.trim().split('\n')[0] ?? '';
  const hint = /not permitted|permission denied/i.test(said) ? '; qemu clusters need root (CAP_NET_ADMIN) for their network namespace' : '';
  throw new IpError(`ip ${args.join(' ')} failed: ${said || (result.timedOut ? 'timed out after 30 s' : `exit ${result.exitCode ?? result.signal}`)}${hint}`, said);
}

/** An `ip` failure; `said` is ip's own message, for callers that tolerate e.g. "Cannot find device". */
export class IpError extends FleetboxError {
  constructor(
    message: string,
    readonly said: string,
  ) {
    super('io', message);
  }
}
