import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

export function sha256Text(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** sha256 of a file, streamed (a vmlinux is ~50 MB). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Hashes already computed by this process, keyed by what changes when a file is rewritten or
 * truncated (inode, size, mtime). Every `prepare` verifies the image; without this a holder that
 * boots three members would hash ~50 MB three times on a 2-core machine for nothing.
 */
const known = new Map<string, string>();

function identity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${path}\0${s.ino}\0${s.size}\0${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** sha256 of a file, or undefined when it does not exist; reuses this process's earlier result. */
export async function sha256FileCached(path: string): Promise<string | undefined> {
  const key = identity(path);
  if (key === undefined) return undefined;
  const cached = known.get(key);
  if (cached !== undefined) return cached;
  let digest: string;
  try {
    digest = await sha256File(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  known.set(key, digest);
  return digest;
}
