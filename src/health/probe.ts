import { connect } from 'node:net';
import type { MemberStatus } from '../protocol/schemas.js';

export type ProbeAnswer =
  | { ok: true; status: MemberStatus }
  /**
   * `no_socket`: nothing listens (no holder). `timeout`: the connection was accepted (or hung)
   * but no answer came in time: the holder is alive but wedged or overloaded. `error`: the
   * holder answered with an error or something that is not a status.
   */
  | { ok: false; reason: 'no_socket' | 'timeout' | 'error'; message: string };
export type ProbeResult = ProbeAnswer & { ms: number };

const MAX_REPLY_BYTES = 1024 * 1024;

function looksLikeStatus(value: unknown): value is { ok: true; status: MemberStatus } {
  if (typeof value !== 'object' || value === null) return false;
  const reply = value as { ok?: unknown; status?: Record<string, unknown> };
  const s = reply.status;
  return reply.ok === true && typeof s === 'object' && s !== null && typeof s.name === 'string' && typeof s.state === 'string' && typeof s.since === 'string';
}

/**
 * Asks one member socket for its status within `timeoutMs`. Never rejects: a member that does
 * not answer is a result, so one slow member cannot hold up a fan-out. Hand-checked instead of
 * zod-validated because this is on `fleetbox status`'s start-up path (see scan.ts).
 */
export function probeStatus(socketPath: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    let buffered = '';
    let settled = false;
    const finish = (result: ProbeAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...result, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout', message: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write('{"cmd":"status"}\n'));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const missing = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      // EAGAIN: the accept queue is full, so the holder is alive but behind.
      const reason = missing ? 'no_socket' : error.code === 'EAGAIN' ? 'timeout' : 'error';
      finish({ ok: false, reason, message: `cannot connect: ${error.code ?? error.message}` });
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl === -1) {
        if (buffered.length > MAX_REPLY_BYTES) finish({ ok: false, reason: 'error', message: 'reply too long' });
        return;
      }
      let value: unknown;
      try {
        value = JSON.parse(buffered.slice(0, nl));
      } catch {
        finish({ ok: false, reason: 'error', message: 'reply is not JSON' });
        return;
      }
      if (looksLikeStatus(value)) {
        finish({ ok: true, status: value.status });
        return;
      }
      const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      finish({ ok: false, reason: 'error', message: typeof error?.message === 'string' ? `${String(error.code)}: ${error.message}` : 'unexpected reply' });
    });
    socket.once('close', () => finish({ ok: false, reason: 'no_socket', message: 'closed without answering' }));
  });
}
