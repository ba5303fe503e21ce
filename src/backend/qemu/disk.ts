import { closeSync, ftruncateSync, fstatSync, openSync } from 'node:fs';
import { FleetboxError } from '../../protocol/errors.js';

/**
 * Creates the member's raw disk as a sparse file of `sizeMiB` if it does not exist yet, and grows
 * (never shrinks) an existing one. The guest formats a never-written disk on first boot.
 */
export function ensureDisk(path: string, sizeMiB: number): void {
  const bytes = sizeMiB * 1024 * 1024;
  let fd: number;
  try {
    fd = openSync(path, 'a', 0o600);
  } catch (error) {
    throw new FleetboxError('io', `cannot create the member disk ${path}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
  try {
    if (fstatSync(fd).size < bytes) ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
