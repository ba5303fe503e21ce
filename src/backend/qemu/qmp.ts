import { connect, type Socket } from 'node:net';
import { FleetboxError } from '../../protocol/errors.js';

interface QmpReply {
  QMP?: unknown;
  return?: unknown;
  error?: { class?: string; desc?: string };
  event?: string;
  id?: number;
}

/** Longest line QMP may send us; its replies to our few commands are a few hundred bytes. */
const MAX_LINE = 1 << 20;

/**
 * A QMP client: newline-delimited JSON over the member's unix socket. After the greeting it
 * sends `qmp_capabilities` (QMP refuses every other command before that) and then runs one
 * command at a time, matching replies by `id` and skipping asynchronous events.
 */
export class QmpClient {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private greeted: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private closedError: Error | undefined;
  /** Events QEMU sent (e.g. POWERDOWN, SHUTDOWN), in order. */
  readonly events: string[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly path: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(new FleetboxError('unreachable', `QMP ${path}: ${error.code ?? error.message}`)));
    socket.on('close', () => this.fail(new FleetboxError('unreachable', `QMP ${path}: QEMU closed the connection`)));
  }

  /** Connects and completes the capabilities handshake within `timeoutMs`. */
  static async connect(path: string, timeoutMs = 2_000): Promise<QmpClient> {
    const socket = connect(path);
    const client = new QmpClient(socket, path);
    const timer = setTimeout(() => client.fail(new FleetboxError('unreachable', `QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => (client.greeted = { resolve, reject }));
      await client.execute('qmp_capabilities');
      return client;
    } catch (error) {
      client.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a QMP command and returns its `return` value; a QMP error becomes a FleetboxError. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const message = JSON.stringify({ execute: command, id, ...(args && { arguments: args }) });
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.write(`${message}\n`);
    });
  }

  close(): void {
    this.fail(new FleetboxError('unreachable', `QMP ${this.path}: connection closed`));
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    if (this.buffered.length > MAX_LINE) {
      this.fail(new FleetboxError('internal', `QMP ${this.path}: over-long line from QEMU`));
      return;
    }
    for (let nl = this.buffered.indexOf('\n'); nl !== -1; nl = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let reply: QmpReply;
    try {
      reply = JSON.parse(line) as QmpReply;
    } catch {
      this.fail(new FleetboxError('internal', `QMP ${this.path}: QEMU sent something that is not JSON`));
      return;
    }
    if (reply.QMP !== undefined) {
      this.greeted?.resolve();
      this.greeted = undefined;
      return;
    }
    if (reply.event !== undefined) {
      this.events.push(reply.event);
      return;
    }
    const pending = reply.id === undefined ? undefined : this.waiting.get(reply.id);
    if (!pending || reply.id === undefined) return;
    this.waiting.delete(reply.id);
    if (reply.error) pending.reject(new FleetboxError('internal', `QMP: ${reply.error.desc ?? reply.error.class ?? 'error'}`));
    else pending.resolve(reply.return);
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    this.greeted?.reject(error);
    this.greeted = undefined;
    for (const pending of this.waiting.values()) pending.reject(error);
    this.waiting.clear();
    this.socket.destroy();
  }
}
