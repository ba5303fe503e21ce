import { connect } from 'node:net';
import type { MemberHealthCheck } from '../types.js';

/** The member's service accepts a TCP connection on its own address and port. */
export const portCheck: MemberHealthCheck = {
  name: 'port',
  check(ctx, signal) {
    const where = `${ctx.network.ip}:${ctx.config.port}`;
    return new Promise((resolve) => {
      const socket = connect({ host: ctx.network.ip, port: ctx.config.port });
      const done = (status: 'pass' | 'fail', detail: string) => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ status, detail });
      };
      const onAbort = () => done('fail', `${where} did not accept a connection in time`);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => done('pass', `${where} accepts connections`));
      socket.once('error', (error: NodeJS.ErrnoException) => done('fail', `${where}: ${error.code ?? error.message}`));
    });
  },
};
