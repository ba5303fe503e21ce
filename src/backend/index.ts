import { FleetboxError } from '../protocol/errors.js';
import type { BackendKind } from '../store/member-config.js';
import type { Backend } from './types.js';

/** Backends load lazily: a process cluster never pays for the qemu code, and vice versa. */
export async function loadBackend(kind: BackendKind): Promise<Backend> {
  switch (kind) {
    case 'process': {
      const { createProcessBackend } = await import('./process/index.js');
      return createProcessBackend();
    }
    case 'qemu': {
      const { createQemuBackend } = await import('./qemu/index.js');
      return createQemuBackend();
    }
    default:
      throw new FleetboxError('usage', `unknown backend ${String(kind)}; use process or qemu`);
  }
}
