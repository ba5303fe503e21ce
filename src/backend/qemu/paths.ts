import { join } from 'node:path';
import type { Store } from '../../store/layout.js';

/** The member's QMP socket: under run/ with a hashed name (see Store.qmpSocketPath). */
export function qmpSocketPath(store: Store, member: string): string {
  return store.qmpSocketPath(member);
}

/** The member's own disk; only `rm` deletes it, so it survives stop/start. */
export function diskPath(store: Store, cluster: string, member: string): string {
  return join(store.memberDir(cluster, member), 'disk.raw');
}

/** QEMU's own stdout/stderr (e.g. "could not open tap"), kept apart from the guest console. */
export function qemuLogPath(store: Store, cluster: string, member: string): string {
  return join(store.memberDir(cluster, member), 'qemu.log');
}
