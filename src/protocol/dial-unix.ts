import { connect, type Socket } from 'node:net';
import { FleetboxError } from './errors.js';

/** How long to wait before knocking again on a listener whose accept queue is full. */
const FULL_QUEUE_RETRY_MS = 15;

/**
 * Connects to a unix socket. A connect to a unix socket whose accept queue is full fails at once
 * with EAGAIN (TCP would wait instead): the listener is alive but behind, as a holder is under a
 * flood of a thousand requests. That is retried until `deadline` (epoch ms) and then rejected as
 * `busy`; any other failure (ENOENT, ECONNREFUSED: nobody listens) is final and `unreachable`.
 * `what` names the listener in the message.
 */
export function dialUnix(path: string, deadline: number, what = path): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(path);
      const onError = (error: NodeJS.ErrnoException) => {
        socket.destroy();
        if (error.code !== 'EAGAIN') reject(new FleetboxError('unreachable', `cannot reach ${what}: ${error.code ?? error.message}`, { cause: error }));
        else if (Date.now() + FULL_QUEUE_RETRY_MS < deadline) setTimeout(attempt, FULL_QUEUE_RETRY_MS);
        else reject(new FleetboxError('busy', `${what} has a full queue of connections; retry later`));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(socket);
      });
    };
    attempt();
  });
}
