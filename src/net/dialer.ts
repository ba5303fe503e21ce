import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';

const CONNECTOR = fileURLToPath(new URL('./ns-connector.js', import.meta.url));
const SETPRIV = '/usr/bin/setpriv';

/** Opens TCP connections to guest addresses, entering the cluster's namespace when it has one. */
export interface Dialer {
  dial(ip: string, port: number, timeoutMs?: number): Promise<Socket>;
  close(): void;
}

function connected(socket: Socket, what: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FleetboxError('unreachable', `${what}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new FleetboxError('unreachable', `${what}: ${error.code ?? error.message}`, { cause: error }));
    });
  });
}

/**
 * For a namespace, one connector process runs inside it for the holder's lifetime (started on
 * first use, killed with the holder through pdeathsig); each dial is a unix-socket connection
 * to it that becomes a pipe to the guest once the connector reached the guest port.
 */
export function createDialer(store: Store, namespace: string | null): Dialer {
  if (namespace === null) {
    return {
      dial: (ip, port, timeoutMs = 2_000) => connected(connect({ host: ip, port, allowHalfOpen: true }), `${ip}:${port}`, timeoutMs),
      close: () => {},
    };
  }
  const socketPath = join(store.runDir, `${createHash('sha256').update(namespace).digest('hex').slice(0, 16)}.ns`);
  let child: ChildProcess | undefined;
  let ready: Promise<void> | undefined;
  const start = () => {
    ready ??= new Promise<void>((resolve, reject) => {
      const argv = ['ip', 'netns', 'exec', namespace, process.execPath, CONNECTOR, socketPath];
      const full = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv;
      child = spawn(full[0] ?? '', full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => {
        ready = undefined;
        child = undefined;
        reject(new FleetboxError('unreachable', `cannot enter network namespace ${namespace} (exit ${code}): ${err.trim()}`));
      });
    });
    return ready;
  };
  return {
    async dial(ip, port, timeoutMs = 2_000) {
      await start();
      const socket = await connected(connect({ path: socketPath, allowHalfOpen: true }), `namespace ${namespace}`, timeoutMs);
      socket.write(`${ip} ${port}\n`);
      // The connector closes the connection at once when the guest port refuses.
      return socket;
    },
    close() {
      child?.kill('SIGTERM');
      child = undefined;
      ready = undefined;
    },
  };
}
