import { connect } from 'node:net';
import type { MemberChecker } from './types.js';

/**
 * process backend: the member's service accepts a TCP connection on its own address. (qemu
 * guests sit in a network namespace the holder does not enter; their hypervisor check covers them.)
 */
export const portChecker: MemberChecker = {
  name: 'port',
  check({ member, signal }) {
    if (member.backend !== 'process') return Promise.resolve({ status: 'skip', detail: `not checked for the ${member.backend} backend` });
    if (member.state !== 'running' || !member.ip) return Promise.resolve({ status: 'skip', detail: `member is ${member.state}` });
    const where = `${member.ip}:${member.port}`;
    return new Promise((resolve) => {
      const socket = connect({ host: member.ip ?? '', port: member.port });
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
