import { BULK_HELLO } from '../../image/guest-init.js';
import { FleetboxError } from '../../protocol/errors.js';
import { PortStream } from './port-stream.js';

/*
 * The holder's end of a member's bulk port: a second virtio-serial port beside the agent's, on
 * which the guest's init serves file bytes raw (`bulk_serve` in image/guest-init.ts). Through the
 * agent a copy travels as base64 inside JSON that qemu-ga parses character by character in the
 * emulated guest (~2.6 MiB/s in); here a piece is a header line and its bytes.
 *
 * One request at a time. A request that fails on the way (a timeout, a closed socket) leaves the
 * stream out of step: the port is then given up for good and the caller uses the agent, which
 * is always there. So is a guest without the loop (an image made before it).
 */

/** A hello must be answered within this; a piece (512 KiB) within the other. */
const HELLO_TIMEOUT_MS = 3_000;
const PIECE_TIMEOUT_MS = 30_000;
/** Bytes one read fetches from the guest (a copy asks for 512 KiB at a time). */
const READ_AHEAD = 4 << 20;

/** A guest's refusal (its `ERR` line): the stream is still in step, the port stays in use. */
class Refused extends FleetboxError {}

export class BulkPort {
  private stream: PortStream | undefined;
  private opening: Promise<boolean> | undefined;
  /** Given up: the caller goes through the agent. */
  private broken = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** What the last read fetched beyond the piece asked for. */
  private ahead: { path: string; offset: number; data: Buffer; eof: boolean } | undefined;

  constructor(
    private readonly path: string,
    private readonly member: string,
    private readonly onGiveUp: (why: string) => void = () => undefined,
    private readonly timeouts = { helloMs: HELLO_TIMEOUT_MS, pieceMs: PIECE_TIMEOUT_MS },
  ) {}

  /**
   * Writes (or appends) `data` to `path` in the guest; false when the port is not usable and
   * nothing was sent (use the agent). A write cut off on its way is an error, never retried
   * elsewhere: the guest may have appended part of it.
   */
  write(path: string, data: Buffer, append: boolean): Promise<boolean> {
    if (path.includes('\n')) return Promise.resolve(false);
    return this.serial('fail', async () => {
      this.ahead = undefined;
      const name = Buffer.from(path);
      this.send(Buffer.concat([Buffer.from(`W ${append ? 1 : 0} ${data.length} ${name.length}\n`), name, data]));
      const answer = await this.line(this.timeouts.pieceMs);
      if (answer !== 'OK') throw this.refusal(answer);
    });
  }

  /**
   * Up to `count` bytes of `path` from `offset`; undefined when the port is not usable (use the
   * agent: a read can be asked again anywhere). Reads ahead: a copy reads its staged archive
   * piece after piece, and each request costs the guest a few short processes, so one request
   * fetches READ_AHEAD and the pieces that follow are served from it until it is used up. Any
   * write, a read elsewhere or from the start drops what was read ahead.
   */
  read(path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean } | undefined> {
    if (path.includes('\n')) return Promise.resolve(undefined);
    let result: { data: Buffer; eof: boolean } | undefined;
    return this.serial('fallback', async () => {
      const ahead = this.ahead;
      // A read from the start is a new read of the file: what it holds now, not what was read ahead.
      if (ahead && offset > 0 && ahead.path === path && offset >= ahead.offset && offset < ahead.offset + ahead.data.length) {
        result = this.slice(ahead, offset, count);
        return;
      }
      this.ahead = undefined;
      const name = Buffer.from(path);
      this.send(Buffer.concat([Buffer.from(`R ${offset} ${Math.max(count, READ_AHEAD)} ${name.length}\n`), name]));
      const answer = await this.line(this.timeouts.pieceMs);
      const ok = /^OK (\d+) ([01])$/.exec(answer);
      if (!ok) throw this.refusal(answer);
      const fetched = { path, offset, data: await this.bytes(Number(ok[1]), this.timeouts.pieceMs), eof: ok[2] === '1' };
      this.ahead = fetched;
      result = this.slice(fetched, offset, count);
    }).then((usable) => (usable ? result : undefined));
  }

  close(): void {
    this.broken = true;
    this.ahead = undefined;
    this.stream?.close();
    this.stream = undefined;
  }

  /** `count` bytes from what was read ahead; once it is used up, it is let go. */
  private slice(ahead: NonNullable<BulkPort['ahead']>, offset: number, count: number): { data: Buffer; eof: boolean } {
    const from = offset - ahead.offset;
    const data = Buffer.from(ahead.data.subarray(from, from + count));
    const usedUp = from + data.length >= ahead.data.length;
    if (usedUp) this.ahead = undefined;
    return { data, eof: ahead.eof && usedUp };
  }

  /** The guest's `ERR` line as an error; anything else it said is the stream out of step. */
  private refusal(answer: string): Error {
    if (answer.startsWith('ERR ')) return new Refused('io', `${this.member}: ${answer.slice(4)}`);
    return new Error(`it answered ${JSON.stringify(answer.slice(0, 40))}`);
  }

  /**
   * Runs `step` when the ones before it are done, on an open port. Resolves false when the port
   * is not usable and nothing was sent. A guest's refusal is thrown as it is. Any other failure
   * gives the port up: a read then resolves false (`fallback`: ask the agent), a write throws
   * (`fail`: part of it may have landed).
   */
  private serial(onFailure: 'fallback' | 'fail', step: () => Promise<void>): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      if (!(await this.open())) return false;
      // Closed since (QEMU gone): nothing of this request is sent, so the agent may take it.
      if (!this.stream || this.stream.closed) {
        this.giveUp('the bulk port closed');
        return false;
      }
      try {
        await step();
        return true;
      } catch (error) {
        if (error instanceof Refused) throw error;
        const why = (error as Error).message;
        this.giveUp(`a request failed: ${why}`);
        if (onFailure === 'fallback') return false;
        throw new FleetboxError('io', `${this.member}: a write was cut off on its way (${why}); nothing more goes over the bulk port, try again`, { cause: error });
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Connects and says hello, once; the holder opens it as soon as the member runs (see PortStream). */
  open(): Promise<boolean> {
    if (this.broken) return Promise.resolve(false);
    this.opening ??= (async () => {
      try {
        this.stream = await PortStream.open(this.path);
        this.stream.send(Buffer.from('H 0 0 0\n'));
        const hello = await this.stream.line(this.timeouts.helloMs);
        if (hello !== BULK_HELLO) throw new Error(`it answered ${JSON.stringify(hello.slice(0, 40))}`);
        return true;
      } catch (error) {
        this.giveUp(`no bulk port: ${(error as Error).message}`);
        return false;
      }
    })();
    return this.opening;
  }

  private giveUp(why: string): void {
    if (this.broken) return;
    this.broken = true;
    this.ahead = undefined;
    this.stream?.close();
    this.stream = undefined;
    this.onGiveUp(why);
  }

  private send(bytes: Buffer): void {
    if (!this.stream) throw new Error('the bulk port is closed');
    this.stream.send(bytes);
  }

  private line(timeoutMs: number): Promise<string> {
    if (!this.stream) throw new Error('the bulk port is closed');
    return this.stream.line(timeoutMs);
  }

  private bytes(count: number, timeoutMs: number): Promise<Buffer> {
    if (!this.stream) throw new Error('the bulk port is closed');
    return this.stream.bytes(count, timeoutMs);
  }
}
