import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { FleetboxError } from '../protocol/errors.js';

/**
 * A host folder mounted in a member (virtiofs). `guest` travels on the kernel command line, so it
 * is held to characters that need no quoting there: letters, digits and `._-+@/`.
 */
export const GUEST_PATH = /^\/[A-Za-z0-9._+@/-]*$/;

export const ShareSchema = z.object({
  /** Absolute, resolved host path of a directory. */
  host: z.string().refine((path) => isAbsolute(path), 'an absolute host path'),
  /** Absolute path in the guest where the folder appears. */
  guest: z.string().regex(GUEST_PATH),
  readOnly: z.boolean().default(false),
});
export type Share = z.infer<typeof ShareSchema>;
export type ShareInput = z.input<typeof ShareSchema>;

/** Guest paths a share may not cover: the guest's own kernel interfaces and fleetbox's runtime. */
const RESERVED_GUEST = ['/proc', '/sys', '/dev', '/run'];

function inside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(sep));
}

/**
 * `SRC[:DST][:ro|rw]` as `up --share` takes it: DST defaults to SRC, the mode to rw (as with
 * `docker run -v`). Paths are not checked against the disk here; see checkShare.
 */
export function parseShareSpec(spec: string, cwd = process.cwd()): ShareInput {
  const parts = spec.split(':');
  let readOnly = false;
  const last = parts.at(-1);
  if (parts.length > 1 && (last === 'ro' || last === 'rw')) {
    readOnly = last === 'ro';
    parts.pop();
  }
  if (parts.length > 2 || parts.some((part) => part === '')) {
    throw new FleetboxError('usage', `--share takes SRC[:DST][:ro|rw], e.g. ./build:/opt/app:ro, not '${spec}' (paths with ':' cannot be shared)`);
  }
  const host = resolve(cwd, parts[0] ?? '');
  return { host, guest: parts[1] ?? host, readOnly };
}

/**
 * A share as a member may boot it: the host folder exists and is a directory (resolved, so a
 * link cannot be swapped later), it is neither the fleetbox home nor holds it (the store has the
 * guests' SSH key), and the guest path is absolute, plain and not a system folder. Throws a
 * one-line `usage` error otherwise.
 */
export function checkShare(share: ShareInput, home: string): Share {
  let host: string;
  try {
    host = realpathSync(share.host);
  } catch (error) {
    throw new FleetboxError('usage', `cannot share ${share.host}: it does not exist (${(error as NodeJS.ErrnoException).code}); create it or fix the path`, { cause: error });
  }
  if (!statSync(host).isDirectory()) throw new FleetboxError('usage', `cannot share ${share.host}: it is not a directory; share the folder that holds it`);
  let realHome = home;
  try {
    realHome = realpathSync(home);
  } catch {
    // a home not created yet cannot be inside anything shared
  }
  if (inside(host, realHome) || inside(realHome, host)) {
    throw new FleetboxError('usage', `cannot share ${share.host}: it is or holds the fleetbox home ${home} (its keys open every guest); share a folder outside it`);
  }
  const guest = posix.normalize(share.guest).replace(/(.)\/$/, '$1');
  if (!GUEST_PATH.test(guest) || guest === '/' || RESERVED_GUEST.some((r) => inside(r, guest))) {
    throw new FleetboxError(
      'usage',
      `cannot mount a share at '${share.guest}' in the guest: use an absolute path of letters, digits and ._-+@/ outside / ${RESERVED_GUEST.join(' ')}`,
    );
  }
  return { host, guest, readOnly: share.readOnly ?? false };
}

/** Checks every share and refuses two at one guest path. */
export function checkShares(shares: readonly ShareInput[], home: string): Share[] {
  const checked = shares.map((share) => checkShare(share, home));
  const seen = new Set<string>();
  for (const share of checked) {
    if (seen.has(share.guest)) throw new FleetboxError('usage', `two shares mount at ${share.guest} in the guest; give each its own DST`);
    seen.add(share.guest);
  }
  if (checked.length > 8) throw new FleetboxError('usage', `a member takes at most 8 shares, not ${checked.length}`);
  return checked;
}
