import { randomBytes } from 'node:crypto';
import { EXEC_HELLO, EXEC_OUTPUT_CAP } from '../../image/guest-init.js';
import { FleetboxError } from '../../protocol/errors.js';
import { killRequestScript, type AgentExecOptions, type AgentExecResult } from './agent-exec.js';
import { PortClosed, PortStream } from './port-stream.js';

/*
 * The holder's end of a member's exec ports: commands without the agent. Through qemu-ga an
 * exec costs the guest qemu-ga's own fork, its child watch and the status polls (17–28 ms a
 * round trip under emulation); a small program of fleetbox's on a port of its own starts the
 * command's shell before the request comes and reads the output itself, so a command costs
 * little more than itself (image/exec-server.c is the other end).
 *
 * A port runs one command at a time, so a member has several; a command that finds none free
 * (or a guest without them) goes through the agent, which runs any number. Once a request is
 * sent, it is never sent anywhere else: the command may have run. A port stays busy until its
 * answer has been read, however late; one whose answer is out of step, or whose stream closed,
 * is given up for good. The others and the agent remain.
 */

/** How long a command waits for a port's hello before it takes another port or the agent. */
const HELLO_WAIT_MS = 3_000;
/** Output follows its header at once (the guest reads it from RAM): only a guest gone silent takes this long. */
const OUTPUT_TIMEOUT_MS = 30_000;
/** Longer commands go through the agent: a busybox shell started ahead reads its command a byte at a time. */
export const MAX_PORT_COMMAND = 16 * 1024;

/** Runs a shell script in the guest that ends processes (through the agent: the port is busy). */
export type Killer = (script: string) => Promise<void>;

export interface ExecPortTimeouts {
  helloMs: number;
  outputMs: number;
}

class ExecPort {
  private stream: PortStream | undefined;
  private opening: Promise<boolean> | undefined;
  /** When the hello went out: a command waits for its answer only until helloMs after this. */
  openedAt = 0;
  private server = { pid: 0, dir: '' };
  private nextId = 1;
  /** Reserved for a command, or still waiting for the answer of one that timed out. */
  busy = false;
  /** Its server said hello: requests may go. */
  ready = false;
  /** Given up: never used again by this holder. */
  broken = false;

  constructor(
    private readonly connect: () => Promise<PortStream>,
    private readonly member: string,
    private readonly onGiveUp: (why: string) => void,
    private readonly timeouts: ExecPortTimeouts,
  ) {}

  /**
   * Connects and says hello, once; resolves when the server answers (false if the port is given
   * up). No deadline: a server still busy with a command of an earlier holder (a restored fork)
   * answers when that ends. Lines before the answer are passed over: what the server said to that
   * holder. The hello's nonce tells this holder's answer from any of those.
   */
  open(): Promise<boolean> {
    if (this.broken) return Promise.resolve(false);
    this.opening ??= (async () => {
      this.openedAt = Date.now();
      try {
        this.stream = await this.connect();
        const nonce = randomBytes(8).toString('hex');
        this.stream.send(Buffer.from(`H ${nonce}\n`));
        for (;;) {
          const hello = new RegExp(`^${EXEC_HELLO} ${nonce} (\\d+) (/\\S+)$`).exec(await this.stream.line());
          if (hello) {
            this.server = { pid: Number(hello[1]), dir: hello[2] as string };
            this.ready = true;
            return true;
          }
        }
      } catch (error) {
        this.giveUp(`no exec server: ${(error as Error).message}`);
        return false;
      }
    })();
    return this.opening;
  }

  /** Runs `command` on this port, which the caller reserved (`busy`) once it was `ready`. */
  async run(command: string, input: Buffer, timeoutMs: number, kill: Killer): Promise<AgentExecResult> {
    const stream = this.stream;
    if (!stream || stream.closed) {
      this.giveUp('the port closed');
      throw new PortClosed('the port closed');
    }
    const id = this.nextId++;
    stream.send(Buffer.concat([Buffer.from(`E ${id} ${input.length}\n${command}\0`), input]));
    const answer = this.answer(stream, id);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FleetboxError('exec_timeout', `command on ${this.member} did not finish within ${timeoutMs} ms: ${command.slice(0, 80)}`)), Math.max(0, timeoutMs));
    });
    try {
      return await Promise.race([answer, timedOut]);
    } catch (error) {
      if (error instanceof FleetboxError && error.code === 'exec_timeout') {
        // The port stays busy until the ended command's answer has been read off it. The kill
        // names this request: late, it ends nothing else. The caller hears of the timeout now.
        answer.catch(() => undefined);
        void kill(killRequestScript(this.server.dir, id, this.server.pid)).catch(() => undefined);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.broken = true;
    this.ready = false;
    this.stream?.close();
    this.stream = undefined;
  }

  /** Reads request `id`'s answer whenever it comes; frees the port once it is read whole. */
  private async answer(stream: PortStream, id: number): Promise<AgentExecResult> {
    try {
      const header = await stream.line();
      const x = /^X (\d+) (\d+) (\d+) (\d+)$/.exec(header);
      if (!x || Number(x[1]) !== id) throw new Error(`it answered ${JSON.stringify(header.slice(0, 40))} to request ${id}`);
      const [outSize, errSize] = [Number(x[3]), Number(x[4])];
      const stdout = await stream.bytes(Math.min(outSize, EXEC_OUTPUT_CAP), this.timeouts.outputMs);
      const stderr = await stream.bytes(Math.min(errSize, EXEC_OUTPUT_CAP), this.timeouts.outputMs);
      const trailer = await stream.line(this.timeouts.outputMs);
      if (trailer !== `Z ${id}`) throw new Error(`its answer to request ${id} ended with ${JSON.stringify(trailer.slice(0, 40))}`);
      this.busy = false;
      return { stdout, stderr, exitCode: Number(x[2]), truncated: outSize > EXEC_OUTPUT_CAP || errSize > EXEC_OUTPUT_CAP };
    } catch (error) {
      const why = (error as Error).message;
      this.giveUp(why);
      if (error instanceof PortClosed) {
        throw new FleetboxError('unreachable', `${this.member} is unreachable: its exec port closed mid-command (guest rebooting or powering off?)`);
      }
      throw new FleetboxError('io', `${this.member}: a command's answer on its exec port was out of step (${why}); that port is no longer used, try again`, { cause: error });
    }
  }

  private giveUp(why: string): void {
    if (this.broken) return;
    this.close();
    this.onGiveUp(why);
  }
}

/** A member's exec ports. */
export class ExecPorts {
  private readonly ports: ExecPort[];

  constructor(
    connectors: readonly (() => Promise<PortStream>)[],
    member: string,
    onGiveUp: (why: string) => void = () => undefined,
    private readonly timeouts: ExecPortTimeouts = { helloMs: HELLO_WAIT_MS, outputMs: OUTPUT_TIMEOUT_MS },
  ) {
    this.ports = connectors.map((connect, k) => new ExecPort(connect, member, (why) => onGiveUp(`exec port ${k}: ${why}`), timeouts));
  }

  static at(paths: readonly string[], member: string, onGiveUp?: (why: string) => void): ExecPorts {
    return new ExecPorts(
      paths.map((path) => () => PortStream.open(path)),
      member,
      onGiveUp,
    );
  }

  /** Connects every port now (the member just started): the servers then wait without polling. */
  open(): void {
    for (const port of this.ports) void port.open();
  }

  /**
   * Runs `command` on a free port within `options.timeoutMs` (waiting for a port's hello counts).
   * Undefined when none is free or ready, or the command is not one a port takes; nothing was
   * sent then, and the agent should run it.
   */
  async run(command: string, options: AgentExecOptions, kill: Killer): Promise<AgentExecResult | undefined> {
    if (command.length === 0 || Buffer.byteLength(command) > MAX_PORT_COMMAND || command.includes('\0')) return undefined;
    const deadline = Date.now() + options.timeoutMs;
    for (const port of this.ports) {
      if (port.busy || port.broken) continue;
      port.busy = true;
      if (!port.ready) {
        // A hello is waited for only in the first helloMs after it went out, and for at most half
        // the command's budget (the rest is for the agent): a port that stays silent (its server busy with a command of an
        // earlier holder, or gone) is passed over at once after that. Its hello may still come.
        const opening = port.open();
        const wait = Math.min(port.openedAt + this.timeouts.helloMs, Date.now() + (deadline - Date.now()) / 2) - Date.now();
        let waited: NodeJS.Timeout | undefined;
        const opened = wait > 0 && (await Promise.race([opening, new Promise<false>((resolve) => (waited = setTimeout(resolve, wait, false)))]));
        clearTimeout(waited);
        if (!opened) {
          port.busy = false;
          continue;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        port.busy = false;
        throw new FleetboxError('exec_timeout', `command did not start within ${options.timeoutMs} ms (waiting for an exec port): ${command.slice(0, 80)}`);
      }
      try {
        return await port.run(command, options.input ?? Buffer.alloc(0), left, kill);
      } catch (error) {
        if (error instanceof PortClosed) return undefined;
        throw error;
      }
    }
    return undefined;
  }

  close(): void {
    for (const port of this.ports) port.close();
  }
}
