import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError } from '../protocol/errors.js';
import { readLines, writeLine } from '../protocol/framing.js';
import { HolderOptionsSchema, holderSettingsFromEnv, RUNNER_FLAG, type HolderOptionsInput } from '../protocol/holder-options.js';
import { AckReplySchema, BindReplySchema, ErrorReplySchema } from '../protocol/schemas.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import type { Store } from '../store/layout.js';
import { openAppendNoFollow } from '../store/no-follow.js';
import { liveHolder } from '../store/pidfile.js';
import { tailText } from './tail.js';

/** The holder's entry point, found next to this file in the built tree (no import of its code). */
const HOLDER_MAIN = fileURLToPath(new URL('../holder/main.js', import.meta.url));

export interface SpawnOptions {
  cluster: string;
  members: string[];
  /** bound: the holder lives only as long as this process and its control connection. */
  bound: boolean;
  /** How long the holder may take to start listening. */
  readyTimeoutMs?: number;
  holderOptions?: Partial<HolderOptionsInput>;
}

export interface SpawnedHolder {
  pid: number;
  /** Bound mode: the acked control connection. Closing it tells the holder to stop everything. */
  control: Socket | undefined;
  instance: string | undefined;
  /** Bound mode: settles when the holder process exits. */
  exited: Promise<unknown>;
}

function tryConnect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(undefined);
    });
  });
}

/** Reads the next JSON line from the control connection. */
function nextLine(socket: Socket, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const reader = readLines(socket);
    const timer = setTimeout(() => reject(new FleetboxError('holder_failed', 'holder did not answer on its control socket')), timeoutMs);
    reader.onValue((value) => {
      clearTimeout(timer);
      socket.unpipe();
      socket.removeAllListeners('data');
      resolve(value);
    });
    reader.onError((error) => {
      clearTimeout(timer);
      reject(new FleetboxError('holder_failed', `holder sent a bad line: ${error.message}`));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new FleetboxError('holder_failed', 'holder closed its control socket'));
    });
  });
}

/**
 * Starts a holder for `cluster` and resolves once its sockets listen (and, bound, once it has
 * acked us as its owner). Detached holders are session leaders with their output in the
 * holder log, unref'd so this process may exit; bound holders are our children.
 */
export async function spawnHolder(store: Store, options: SpawnOptions): Promise<SpawnedHolder> {
  const holderOptions = HolderOptionsSchema.parse({
    home: store.home,
    mode: options.bound ? 'bound' : 'detached',
    ...(options.bound && { parentPid: process.pid }),
    ...holderSettingsFromEnv(process.env),
    ...options.holderOptions,
  });
  const logPath = store.holderLogPath(options.cluster);
  const logFd = openAppendNoFollow(logPath);
  let child: ChildProcess;
  try {
    // Node's own spawn (execa costs ~90 ms to load, on the path of every `up`). Detached: setsid.
    child = spawn(process.execPath, [HOLDER_MAIN, RUNNER_FLAG, options.cluster, options.members.join(',')], {
      detached: !options.bound,
      stdio: ['ignore', logFd, logFd],
      // The environment passes on for the tools the holder runs (PATH, locale); the holder's own
      // settings are all in FLEETBOX_OPTS.
      env: { ...process.env, FLEETBOX_OPTS: JSON.stringify(holderOptions) },
    });
  } finally {
    closeSync(logFd);
  }
  let exitInfo: string | undefined;
  const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (error) => {
      exitInfo = `could not start: ${error.message}`;
      resolve({ exitCode: null, signal: null });
    });
    child.once('exit', (exitCode, signal) => {
      exitInfo = signal ? `signal ${signal}` : `exit code ${exitCode}`;
      resolve({ exitCode, signal });
    });
  });
  const pid = child.pid;
  if (pid === undefined) {
    await exited;
    throw new FleetboxError('holder_failed', `could not start the holder (${exitInfo ?? 'no pid'}): ${tailText(logPath)}`);
  }
  // Neither the holder nor its connection keeps this process alive: a script that ends without
  // closing its cluster ends the holder's owner connection, which is exactly the cleanup signal.
  child.unref();
  crashPoint('client-after-spawn');

  const controlPath = store.controlSocketPath(options.cluster);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  // Ready means: every member's pidfile names this holder (written only after its socket
  // listens) and the control socket answers.
  const pidfilesReady = () =>
    options.members.every((m) => liveHolder(store.pidfilePath(options.cluster, m))?.pid === pid);
  let socket: Socket | undefined;
  while (!socket) {
    if (exitInfo !== undefined) {
      throw new FleetboxError('holder_failed', `holder of ${options.cluster} exited (${exitInfo}) before it was ready: ${tailText(logPath)}`);
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new FleetboxError('holder_failed', `holder of ${options.cluster} did not start listening in time: ${tailText(logPath)}`);
    }
    socket = pidfilesReady() ? await tryConnect(controlPath) : undefined;
    if (!socket) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!options.bound) {
    socket.destroy();
    return { pid, control: undefined, instance: undefined, exited };
  }
  return bind(socket, pid, exited, options.cluster);
}

async function bind(socket: Socket, pid: number, exited: Promise<unknown>, cluster: string): Promise<SpawnedHolder> {
  try {
    writeLine(socket, { cmd: 'bind', version: PROTOCOL_VERSION });
    const reply = await nextLine(socket, 10_000);
    const failure = ErrorReplySchema.safeParse(reply);
    if (failure.success) {
      if (failure.data.error.code === 'version_mismatch') {
        // A stale holder binary (or a stale client) must not keep members half-owned.
        process.kill(pid, 'SIGKILL');
        throw new FleetboxError(
          'version_mismatch',
          `the holder of ${cluster} speaks another protocol (${failure.data.error.message}); it was stopped. Rebuild fleetbox (npm run build) so client and holder match`,
        );
      }
      throw new FleetboxError(failure.data.error.code, failure.data.error.message);
    }
    const bound = BindReplySchema.parse(reply);
    crashPoint('client-before-ack');
    writeLine(socket, { cmd: 'ack' });
    AckReplySchema.parse(await nextLine(socket, 10_000));
    socket.on('error', () => socket.destroy());
    socket.unref();
    return { pid, control: socket, instance: bound.instance, exited };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
