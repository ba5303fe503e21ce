import { connect, type Socket } from 'node:net';

/*
 * The holder's end of one of a member's raw virtio-serial ports (bulk, exec): QEMU listens on a
 * unix socket per port and the holder is its only client. What the guest says arrives as a byte
 * stream of header lines and counted bytes; this reads it as such, each read with a deadline.
 *
 * The connection is also what lets the guest's side of the port sleep: while no host is
 * connected, a read of a virtio port returns end of file at once, so the bulk loop waits a
 * second and an exec server 0.2 s before they try again; once a host is connected the read
 * blocks until a request arrives.
 */

export class PortStream {
  /** What arrived and was not taken yet, in the order it came. */
  private chunks: Buffer[] = [];
  private size = 0;
  private wake: (() => void) | undefined;
  private ended = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  /** A stream over a socket already connected (tests hand one end of a socket pair). */
  static over(socket: Socket): PortStream {
    return new PortStream(socket);
  }

  static open(path: string): Promise<PortStream> {
    return new Promise<PortStream>((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new PortStream(socket)));
      socket.once('error', reject);
    });
  }

  /** Closed by QEMU (it exited) or by `close()`. */
  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
    this.wake?.();
  }

  send(bytes: Buffer): void {
    if (this.ended) throw new Error('the port is closed');
    this.socket.write(bytes);
  }

  /** The next line, without its newline; without a timeout it waits until one comes or the port closes. */
  async line(timeoutMs?: number): Promise<string> {
    await this.waitFor(() => this.chunks.some((chunk) => chunk.includes(0x0a)), timeoutMs, 'answer');
    const last = this.chunks.findIndex((chunk) => chunk.includes(0x0a));
    const head = last === 0 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks.slice(0, last + 1));
    const end = head.indexOf(0x0a);
    const rest = head.subarray(end + 1);
    this.chunks.splice(0, last + 1, ...(rest.length > 0 ? [rest] : []));
    this.size -= end + 1;
    return head.subarray(0, end).toString('utf8');
  }

  /** Exactly `count` bytes. */
  bytes(count: number, timeoutMs: number): Promise<Buffer> {
    return this.waitFor(() => this.size >= count, timeoutMs, `${count} bytes`).then(() => this.take(count));
  }

  /** Waits until `ready()` says enough has arrived, the port closes, or `timeoutMs` (if any) passes. */
  private async waitFor(ready: () => boolean, timeoutMs: number | undefined, what: string): Promise<void> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    while (!ready()) {
      if (this.ended) throw new PortClosed(`the port closed while waiting for ${what}`);
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = left === undefined ? undefined : setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Takes the first `count` bytes that arrived, joining only the chunks they span. */
  private take(count: number): Buffer {
    const parts: Buffer[] = [];
    let wanted = count;
    while (wanted > 0) {
      const chunk = this.chunks[0] as Buffer;
      if (chunk.length <= wanted) {
        parts.push(chunk);
        this.chunks.shift();
        wanted -= chunk.length;
      } else {
        parts.push(chunk.subarray(0, wanted));
        this.chunks[0] = chunk.subarray(wanted);
        wanted = 0;
      }
    }
    this.size -= count;
    // A copy: what is kept must not pin the (possibly large) chunk it was cut from.
    return Buffer.concat(parts, count);
  }
}

/** The port closed under a read: QEMU is gone (the guest powered off) or the port was closed. */
export class PortClosed extends Error {}
