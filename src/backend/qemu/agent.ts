import { randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { FleetboxError } from '../../protocol/errors.js';

/** qemu-ga's byte that resets its parser and that prefixes its reply to guest-sync-delimited. */
const SYNC_BYTE = 0xff;

/** Longest reply accepted: guest-exec-status carries up to 16 MiB of stdout and of stderr, base64. */
const MAX_REPLY_BYTES = 48 << 20;

/** Default per-call budget: a live agent answers a call in well under a second, even under TCG. */
const CALL_TIMEOUT_MS = 10_000;

/** Calls waiting for the agent at once; more are refused with `busy` instead of queued for ever. */
export const MAX_PENDING_CALLS = 256;

interface Pending {
  id: number;
  command: string;
  line: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface AgentReply {
  id?: unknown;
  return?: unknown;
  error?: { class?: string; desc?: string };
}

/**
 * The holder's connection to one member's guest agent (qemu-ga on a virtio-serial port, QEMU
 * listening on a unix socket). The holder is its only client. After every (re)connect the
 * channel is resynchronised with guest-sync-delimited (a random id, echoed behind a 0xFF byte;
 * whatever a previous connection left in the pipe is discarded). Calls go one at a time, each
 * with an `id` that qemu-ga echoes; a call that times out drops the connection, so a late reply
 * is never taken for the next call's.
 */
export class GuestAgent {
  private socket: Socket | undefined;
  private ready: Promise<void> | undefined;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** While syncing: the id whose echo ends the sync; replies before it are stale. */
  private syncId: number | undefined;
  private syncDone: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly pending: Pending[] = [];
  private closed = false;
  private nextId = 1;
  /** Whether the first pending call is on the wire (one at a time: see sendNext). */
  private sent = false;

  constructor(
    private readonly path: string,
    private readonly member: string,
  ) {}

  /** Runs one agent command and returns its `return` value. */
  async call<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    if (this.closed) throw new FleetboxError('not_running', `${this.member} is stopping; its agent is closed`);
    if (this.pending.length >= MAX_PENDING_CALLS) {
      throw new FleetboxError('busy', `${this.member}'s agent has ${MAX_PENDING_CALLS} calls waiting; retry later`);
    }
    const deadline = Date.now() + timeoutMs;
    await this.connected(timeoutMs);
    const socket = this.socket;
    if (!socket) throw this.unreachable('not connected');
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The agent may still answer later: that answer would be read as the next call's.
        this.reset(this.unresponsive(`${command} got no answer within ${timeoutMs} ms`));
      }, Math.max(1, deadline - Date.now()));
      const id = this.nextId++;
      const line = `${JSON.stringify({ execute: command, ...(args && { arguments: args }), id })}\n`;
      this.pending.push({ id, command, line, resolve: resolve as (value: unknown) => void, reject, timer });
      this.sendNext();
    });
  }

  /** Ends the connection; calls in flight fail. Used when the member stops. */
  close(): void {
    this.closed = true;
    this.reset(new FleetboxError('not_running', `${this.member} stopped`));
  }

  private connected(timeoutMs: number): Promise<void> {
    if (!this.ready) {
      const opening = this.open(Math.min(timeoutMs, 5_000));
      this.ready = opening;
      // Only this attempt's failure clears it: a newer attempt may already be under way.
      opening.catch(() => {
        if (this.ready === opening) this.ready = undefined;
      });
    }
    return this.ready;
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const socket = connect(this.path);
      this.socket = socket;
      this.chunks = [];
      this.buffered = 0;
      this.syncId = randomInt(1, 2 ** 31);
      const timer = setTimeout(() => {
        this.reset(this.unresponsive(`no answer to guest-sync within ${timeoutMs} ms (is the agent running in the guest?)`));
      }, timeoutMs);
      this.syncDone = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        if (this.socket === socket) this.reset(this.unreachable(error.code ?? error.message));
      });
      socket.on('close', () => {
        if (this.socket === socket) this.reset(this.unreachable('the channel closed (guest rebooting or powering off?)'));
      });
      socket.once('connect', () => {
        socket.write(Buffer.from([SYNC_BYTE]));
        socket.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id: this.syncId } })}\n`);
      });
    });
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered > MAX_REPLY_BYTES) {
      this.reset(new FleetboxError('internal', `${this.member}'s agent sent a reply over ${MAX_REPLY_BYTES} bytes`));
      return;
    }
    if (chunk.indexOf(0x0a) === -1) return;
    let data = Buffer.concat(this.chunks);
    for (let nl = data.indexOf(0x0a); nl !== -1 && this.socket === socket; nl = data.indexOf(0x0a)) {
      let line = data.subarray(0, nl);
      data = data.subarray(nl + 1);
      const sync = line.lastIndexOf(SYNC_BYTE);
      if (sync !== -1) line = line.subarray(sync + 1);
      if (line.length > 0) this.onLine(line.toString('utf8'));
    }
    this.chunks = data.length > 0 ? [data] : [];
    this.buffered = data.length;
  }

  private onLine(line: string): void {
    let reply: AgentReply;
    try {
      reply = JSON.parse(line) as AgentReply;
    } catch {
      // Noise from before the sync (a half line of an old connection) is expected; after it, not.
      if (this.syncId === undefined) this.reset(new FleetboxError('internal', `${this.member}'s agent sent something that is not JSON`));
      return;
    }
    if (this.syncId !== undefined) {
      if (reply.return === this.syncId) {
        this.syncId = undefined;
        this.syncDone?.resolve();
        this.syncDone = undefined;
        this.sendNext();
      }
      return;
    }
    const pending = this.pending[0];
    // A reply to a call that timed out on an earlier connection: not this call's.
    if (!pending || !this.sent || reply.id !== pending.id) return;
    this.pending.shift();
    this.sent = false;
    clearTimeout(pending.timer);
    this.sendNext();
    if (reply.error) {
      pending.reject(new FleetboxError('io', `${this.member}'s agent refused ${pending.command}: ${reply.error.desc ?? reply.error.class ?? 'error'}`));
    } else {
      pending.resolve(reply.return);
    }
  }

  /**
   * Puts the next call on the wire once the previous one is answered. Measured with qemu-ga 7.2:
   * requests written back to back while it is busy are lost without a reply (17 of 20 in one
   * burst), so calls are never pipelined; each reply is matched to its call by `id`.
   */
  private sendNext(): void {
    const next = this.pending[0];
    if (!next || this.sent || !this.socket || this.syncId !== undefined || !this.ready) return;
    this.sent = true;
    this.socket.write(next.line);
  }

  private reset(error: Error): void {
    this.sent = false;
    const socket = this.socket;
    this.socket = undefined;
    this.ready = undefined;
    this.syncId = undefined;
    socket?.destroy();
    this.syncDone?.reject(error);
    this.syncDone = undefined;
    for (const pending of this.pending.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }

  private unreachable(why: string): FleetboxError {
    return new FleetboxError('unreachable', `${this.member}'s guest agent: ${why}`);
  }

  private unresponsive(why: string): FleetboxError {
    return new FleetboxError('unresponsive', `${this.member}'s guest agent: ${why}`);
  }
}
