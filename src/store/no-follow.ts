import { constants, lstatSync, openSync, rmSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from './layout.js';

/*
 * Nothing in the store is ever reached through a symbolic link: a link planted there would make
 * fleetbox append to, or delete, something outside the store on its owner's authority.
 */

function linkError(path: string): FleetboxError {
  return new FleetboxError('state_corrupt', `${path} is a symbolic link; fleetbox does not follow links in its store: remove it`);
}

/** Opens a store file for appending, created 0600 if new; a symlink there is refused, not followed. */
export function openAppendNoFollow(path: string, mode = 0o600): number {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw linkError(path);
    throw error;
  }
}

/**
 * Deletes `path`, which must lie inside the store, refusing when any directory between the
 * store's home and it is a symbolic link (rm of a linked clusters/<name> once deleted a folder
 * outside the store). A link at `path` itself is removed as a link.
 */
export function removeInStore(store: Store, path: string): void {
  const rel = relative(store.home, path);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) {
    throw new FleetboxError('internal', `refusing to delete ${path}: it is not inside the store ${store.home}`);
  }
  const parts = rel.split(sep);
  let current = store.home;
  for (const part of parts.slice(0, -1)) {
    current = `${current}${sep}${part}`;
    try {
      if (lstatSync(current).isSymbolicLink()) throw linkError(current);
    } catch (error) {
      if (error instanceof FleetboxError) throw error;
      return; // a parent is gone: nothing below it to delete
    }
  }
  rmSync(path, { recursive: true, force: true });
}
