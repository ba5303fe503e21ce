import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Loopback addresses are machine-wide, stores are not: two stores (two users, two parallel test
 * runs) must never hand out the same 127.x.y.0/24, or one store's clients reach the other's
 * members. Each subnet in use is claimed by one file in a host-wide directory, created with
 * O_EXCL so two claimers cannot both win. A claim whose cluster no longer has a network record
 * (its store was removed, its cluster rm'd) is stale and may be taken over.
 */
export interface ClaimOwner {
  home: string;
  cluster: string;
}

/** /run is per boot, like the loopback addresses themselves; without root, a per-user folder. */
export function claimsDir(): string {
  for (const dir of ['/run/fleetbox/loopback', join(tmpdir(), `fleetbox-${process.getuid?.() ?? 'user'}`, 'loopback')]) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      return dir;
    } catch {
      // not ours to write; try the next
    }
  }
  throw new Error('no writable folder for loopback subnet claims');
}

function readClaim(path: string): ClaimOwner | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<ClaimOwner>;
    return typeof value.home === 'string' && typeof value.cluster === 'string' ? { home: value.home, cluster: value.cluster } : undefined;
  } catch {
    return undefined;
  }
}

/** A claim is live while its cluster's network record exists (unreadable counts as existing). */
function isLive(owner: ClaimOwner): boolean {
  try {
    statSync(join(owner.home, 'clusters', owner.cluster, 'network.json'));
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

const same = (a: ClaimOwner, b: ClaimOwner) => a.home === b.home && a.cluster === b.cluster;

/**
 * Claims `subnet` (first three octets) for `owner`. Returns undefined when the claim is (now)
 * ours, or why it is not: the subnet is live in another store.
 */
export function claimSubnet(subnet: string, owner: ClaimOwner, dir = claimsDir()): string | undefined {
  const path = join(dir, subnet);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(owner), { flag: 'wx', mode: 0o644 });
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readClaim(path);
    if (holder && same(holder, owner)) return undefined;
    if (holder && isLive(holder)) return `used by cluster ${holder.cluster} of the store at ${holder.home}`;
    // Stale (or torn): move it aside atomically; of two takers only one rename succeeds, and
    // both then race on the O_EXCL create above, which only one wins.
    try {
      renameSync(path, `${path}.stale-${randomBytes(4).toString('hex')}`);
    } catch {
      // another taker moved it first
    }
    cleanAside(dir, subnet);
  }
  return 'claimed by another store while we looked';
}

function cleanAside(dir: string, subnet: string): void {
  try {
    for (const entry of readdirSync(dir)) if (entry.startsWith(`${subnet}.stale-`)) unlinkSync(join(dir, entry));
  } catch {
    // best effort: a leftover aside file claims nothing
  }
}
