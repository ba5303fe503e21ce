import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/layout.js';
import { hostCommand } from './host-command.js';
import { sshKeyDir } from './ssh-key.js';

/**
 * The guests' SSH host key (dropbear format), one per installation and baked into the image:
 * generating it at boot would cost every guest CPU time under TCG. Clients do not check it
 * (the guests live in a private namespace and their addresses are reused), so sharing is fine.
 */
export async function ensureHostKey(store: Store): Promise<string> {
  const path = join(sshKeyDir(store), 'guest_host_ed25519.dropbear');
  if (!existsSync(path)) {
    mkdirSync(sshKeyDir(store), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    await hostCommand('dropbearkey', ['-t', 'ed25519', '-f', tmp], { failCode: 'missing_prerequisite', hint: 'run: fleetbox setup --yes' });
    chmodSync(tmp, 0o600);
    // rename, so a concurrent caller sees a whole key or none
    renameSync(tmp, path);
  }
  return path;
}
