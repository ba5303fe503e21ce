import type { ImmediateHealthCheck, MemberHandle } from '../types.js';
import { listeningInodes, ownedListener, stillHeld, type HeldSocket } from './listener.js';

/** A health round reads the kernel's listening table at most once for all members. */
const ROUND_TABLE_AGE_MS = 1_000;

/** The listening socket last found to be each running member's own, and where it holds it. */
const verified = new WeakMap<MemberHandle, HeldSocket>();

/**
 * The member listens on its own address and port. No connection per member per poll (that was
 * most of an idle holder's CPU, and tells no more: the kernel completes a connect for any
 * listening socket, answered or not). In a cgroup the socket must be the member's own: found once
 * in the kernel's listening table and its processes' descriptors, then each poll is one readlink
 * showing the member still holds that socket. Elsewhere the shared listening table is read.
 */
export const portCheck: ImmediateHealthCheck = {
  name: 'port',
  checkNow(ctx, handle) {
    const { ip } = ctx.network;
    const { port } = ctx.config;
    const where = `${ip}:${port}`;
    const pass = { status: 'pass', detail: `${where} is listening` } as const;
    const known = verified.get(handle);
    if (known && stillHeld(known)) return pass;
    if (listeningInodes(ip, port, ROUND_TABLE_AGE_MS).size === 0) return { status: 'fail', detail: `nothing listens on ${where}` };
    if (handle.cgroup) {
      const held = ownedListener(handle, ip, port, ROUND_TABLE_AGE_MS);
      if (!held) return { status: 'fail', detail: `${where} is held by a process that is not ${ctx.config.name}'s` };
      verified.set(handle, held);
    }
    return pass;
  },
};
