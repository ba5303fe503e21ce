import { pollUntil } from '../host/poll.js';
import type { SpawnedHolder } from './spawn.js';
import { isProcessAlive } from '../host/proc.js';

/**
 * A bound holder's lifetime, owned by this process. Closing it (or disposing it with
 * `await using`) closes the owner connection: the holder stops every member and exits.
 */
export class Session {
  private closing: Promise<void> | undefined;

  constructor(
    readonly cluster: string,
    private readonly holder: SpawnedHolder,
  ) {}

  get holderPid(): number {
    return this.holder.pid;
  }

  /** Idempotent; resolves once the holder process is gone (SIGKILL after `timeoutMs`). */
  close(timeoutMs = 30_000): Promise<void> {
    this.closing ??= (async () => {
      this.holder.control?.end();
      const exited = await pollUntil(() => (isProcessAlive(this.holder.pid) ? undefined : true), timeoutMs);
      if (!exited) {
        try {
          process.kill(this.holder.pid, 'SIGKILL');
        } catch {
          // exited just now
        }
      }
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
