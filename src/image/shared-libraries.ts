import { FleetboxError } from '../protocol/errors.js';
import { hostCommand } from './host-command.js';

/** A shared library a binary loads: the path it is looked up at, and where it really is on the host. */
export interface SharedLibrary {
  /** Path inside the guest (as the loader asks for it, e.g. /lib64/ld-linux-x86-64.so.2). */
  guestPath: string;
  /** Host file to copy (symlinks are followed by the copy). */
  hostPath: string;
}

/**
 * The shared libraries `binary` needs, from `ldd`. The dynamic loader is listed under its
 * PT_INTERP path, which is where the guest must have it for the binary to start at all.
 */
export async function sharedLibrariesOf(binary: string): Promise<SharedLibrary[]> {
  const out = await hostCommand('ldd', [binary]);
  const libraries: SharedLibrary[] = [];
  for (const line of out.split('\n')) {
    const mapped = /^\s*\S+\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const direct = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    const path = mapped?.[1] ?? direct?.[1];
    if (path) libraries.push({ guestPath: path, hostPath: path });
    else if (/=>\s+not found/.test(line)) {
      throw new FleetboxError('missing_prerequisite', `${binary} needs a library that is not installed (${line.trim()}); run: fleetbox setup --yes`);
    }
  }
  return libraries;
}
