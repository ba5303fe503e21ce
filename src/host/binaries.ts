import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** Directories searched for host tools, sbin included: root's tools are not on every user's PATH. */
const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * Absolute path of an executable on the host, or undefined when it is not installed.
 * FLEETBOX_TOOLS_PATH (colon-separated) replaces the search list, for tool builds kept outside
 * the usual places; it also lets tests show what a machine without a tool gets.
 */
export function findBinary(name: string): string | undefined {
  const only = process.env.FLEETBOX_TOOLS_PATH;
  const dirs = only !== undefined ? only.split(':').filter(Boolean) : [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
