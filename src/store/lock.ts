import { accessSync, constants, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { FleetboxError } from '../protocol/errors.js';

export interface LockOptions {
  /** How long to keep trying before giving up with `busy`. */
  waitMs?: number;
}

/**
 * Runs `fn` while holding the exclusive lock directory `lockPath` (e.g. run/<cluster>.lock). proper-lockfile's default onCompromised throws from a timer and kills the process;
 * ours records the loss so the critical section's caller gets a clear error instead.
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  // A store that cannot be written is not "locked by another command": say so at once instead of
  // retrying for the whole wait (proper-lockfile retries on any error).
  try {
    mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
    accessSync(dirname(lockPath), constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    throw new FleetboxError('io', `the store folder ${dirname(lockPath)} is not writable (${code}); fleetbox must write there to change anything`, { cause: error });
  }
  const path = lockPath.replace(/\.lock$/, '');
  const waitMs = options.waitMs ?? 30_000;
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, {
      // A SIGKILLed command leaves its lock behind: short staleness bounds how long that blocks
      // the next command, frequent updates keep a live holder's lock fresh.
      stale: 4_000,
      update: 1_000,
      retries: { retries: Math.max(1, Math.ceil(waitMs / 100)), minTimeout: 50, maxTimeout: 100, factor: 1.2 },
      realpath: false,
      lockfilePath: lockPath,
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    throw new FleetboxError('busy', `${path} is locked by another fleetbox command; try again`, { cause: error });
  }
  try {
    const result = await fn();
    if (compromised) throw new FleetboxError('busy', `lost the lock on ${path}: ${compromised.message}`);
    return result;
  } finally {
    await release().catch(() => undefined);
  }
}
