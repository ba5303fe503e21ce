import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FleetboxError } from '../../protocol/errors.js';
import { MAX_SOCKET_PATH, type Store } from '../../store/layout.js';
import { validateName } from '../../store/names.js';

/**
 * The member's QMP socket: under run/ with a hashed name, because the member directory can be
 * deeper than the 107 bytes a unix socket path may have.
 */
export function qmpSocketPath(store: Store, member: string): string {
  const hash = createHash('sha256').update(validateName(member, 'member name')).digest('hex').slice(0, 16);
  const path = join(store.runDir, `${hash}.qmp`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new FleetboxError('path_too_long', `QMP socket path ${path} is over ${MAX_SOCKET_PATH} bytes: set FLEETBOX_HOME to a shorter directory`);
  }
  return path;
}

/** The member's own disk; only `rm` deletes it, so it survives stop/start. */
export function diskPath(store: Store, cluster: string, member: string): string {
  return join(store.memberDir(cluster, member), 'disk.raw');
}

/** QEMU's own stdout/stderr (e.g. "could not open tap"), kept apart from the guest console. */
export function qemuLogPath(store: Store, cluster: string, member: string): string {
  return join(store.memberDir(cluster, member), 'qemu.log');
}
