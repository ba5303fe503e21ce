import type { MemberHealthCheck } from '../types.js';
import { listeningInodes, memberOwnsListener } from './listener.js';

/**
 * The member listens on its own address and port. Read from the kernel's listening table (one
 * read shared by every member's check) instead of a connection per member per poll, which was
 * most of an idle holder's CPU: a connect tells no more, since the kernel completes it for any
 * listening socket, answered or not. In a cgroup the socket must also be the member's own.
 */
export const portCheck: MemberHealthCheck = {
  name: 'port',
  check(ctx, _signal, handle) {
    const where = `${ctx.network.ip}:${ctx.config.port}`;
    if (listeningInodes(ctx.network.ip, ctx.config.port).size === 0) return Promise.resolve({ status: 'fail', detail: `nothing listens on ${where}` });
    if (handle.cgroup && !memberOwnsListener(handle, ctx.network.ip, ctx.config.port)) {
      return Promise.resolve({ status: 'fail', detail: `${where} is held by a process that is not ${ctx.config.name}'s` });
    }
    return Promise.resolve({ status: 'pass', detail: `${where} is listening` });
  },
};
