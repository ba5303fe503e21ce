import { lstatSync, unlinkSync, chmodSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FleetboxError } from '../protocol/errors.js';

/**
 * Resolves true if something listens on the unix socket at `path`. A full accept queue (EAGAIN)
 * is a live listener too: a flooded holder's socket must never be taken for a leftover.
 */
export function socketAnswers(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'EAGAIN'));
  });
}

/**
 * Listens on a unix socket. A leftover file is removed only when it is a socket and nothing
 * answers on it: another live holder's socket is never unlinked (DESIGN §3).
 */
export async function listenUnix(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  let stale = false;
  try {
    stale = lstatSync(path).isSocket();
    if (!stale) throw new FleetboxError('io', `${path} exists and is not a socket; remove it by hand`);
  } catch (error) {
    if (error instanceof FleetboxError) throw error;
  }
  if (stale) {
    if (await socketAnswers(path)) {
      throw new FleetboxError('already_running', `another holder is listening on ${path}`);
    }
    unlinkSync(path);
  }
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return server;
}

/** Stops accepting, removes the socket file; open connections finish on their own. */
export function closeUnix(server: Server, path: string): void {
  server.close();
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}
