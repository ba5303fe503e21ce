import type { Socket } from 'node:net';
import type { z } from 'zod';
import { dialUnix } from '../protocol/dial-unix.js';
import { FleetboxError } from '../protocol/errors.js';
import { readLines, writeLine } from '../protocol/framing.js';
import { ErrorReplySchema } from '../protocol/schemas.js';

export interface RequestOptions {
  /** Whole-request deadline; `stop` and `addmember` wait for real work, so pass a long one. */
  timeoutMs?: number;
  /**
   * The holder must take the request up within this (sent as `expiresAt`), or refuse it: a
   * request the client stopped waiting for never runs later. Defaults to `timeoutMs`.
   */
  startWithinMs?: number;
  /** Replies that come before the final one (e.g. an exec's output parts), each handed over as it arrives. */
  parts?: { schema: z.ZodType; onPart(value: unknown): void };
}

/**
 * Sends one request on a fresh connection and resolves with the validated success reply.
 * `unreachable` means nobody listens there (no live holder) or it hung up without a word;
 * `unresponsive` means something accepted the connection but said nothing in time (a stopped,
 * wedged or descriptor-starved holder: alive, so its members must not be read as stopped). An
 * error reply becomes a FleetboxError with the holder's code and message.
 */
export function request<T extends z.ZodType>(
  socketPath: string,
  body: Record<string, unknown>,
  success: T,
  options: RequestOptions = {},
): Promise<z.infer<T>> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const startWithinMs = options.startWithinMs ?? timeoutMs;
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    let settled = false;
    const finish = (error: Error | undefined, value?: z.infer<T>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      if (error) reject(error);
      else resolve(value as z.infer<T>);
    };
    // Until connected, the dial settles the request by itself at the deadline (busy while the
    // accept queue stays full): a timer racing it would call a flooded holder unreachable. A
    // unix-socket connect never hangs, so the later fallback is only a safety net.
    let graceUsed = false;
    const timer = setTimeout(() => {
      if (socket) finish(new FleetboxError('unresponsive', `the holder at ${socketPath} took the request but did not answer within ${timeoutMs} ms`));
      else if (!graceUsed) {
        graceUsed = true;
        timer.refresh();
      } else finish(new FleetboxError('unreachable', `no connection to ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    const talk = (socket: Socket) => {
      socket.once('error', (error: NodeJS.ErrnoException) => {
        finish(new FleetboxError('unreachable', `lost the connection to the holder at ${socketPath}: ${error.code ?? error.message}`, { cause: error }));
      });
      socket.once('close', () => finish(new FleetboxError('unreachable', `holder closed ${socketPath} without answering`)));
      writeLine(socket, { ...body, expiresAt: Date.now() + startWithinMs });
      const reader = readLines(socket);
      reader.onError((error) => finish(new FleetboxError('internal', `holder sent a bad reply: ${error.message}`)));
      reader.onValue((value) => {
        const failure = ErrorReplySchema.safeParse(value);
        if (failure.success) {
          finish(new FleetboxError(failure.data.error.code, failure.data.error.message));
          return;
        }
        if (options.parts) {
          const part = options.parts.schema.safeParse(value);
          if (part.success) {
            options.parts.onPart(part.data);
            return;
          }
        }
        const parsed = success.safeParse(value);
        if (!parsed.success) {
          finish(new FleetboxError('internal', `holder sent an unexpected reply: ${parsed.error.issues[0]?.message}`));
          return;
        }
        finish(undefined, parsed.data);
      });
    };
    dialUnix(socketPath, Date.now() + timeoutMs, `holder at ${socketPath}`).then(
      (connected) => {
        if (settled) {
          connected.destroy();
          return;
        }
        socket = connected;
        talk(connected);
      },
      (error: Error) => finish(error),
    );
  });
}
