import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { readJson, writeJsonAtomic } from '../store/atomic.js';

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

/** How a caller gets a file's sha256: hashing it, or trusting a recorded result. */
export type FileHasher = (path: string) => Promise<string | undefined>;

const MemoSchema = z.record(z.string(), z.object({ id: z.string(), sha256: z.string() }));

/** What changes whenever a file's bytes can have changed: ctime moves on every write, and no utimes call sets it back. */
function strongIdentity(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * A hasher that remembers results across processes in `memoFile` (JSON, path → identity and
 * sha256) and trusts one while the file's device, inode, size, mtime and ctime are unchanged:
 * every `up` starts a holder, and hashing the ~50 MB kernel and the guest's binaries again in each
 * cost ~0.6 s. Only a change below the file system (bit rot) goes unseen; `fleetbox setup` and
 * the test suite's set-up hash everything. A memo that cannot be read or written costs a hash,
 * never a wrong answer.
 */
export function recordedHashes(memoFile: string): FileHasher {
  let memo: z.infer<typeof MemoSchema> | undefined;
  return async (path) => {
    if (memo === undefined) {
      try {
        memo = readJson(memoFile, MemoSchema) ?? {};
      } catch {
        memo = {};
      }
    }
    const id = strongIdentity(path);
    if (id === undefined) return undefined;
    const known = memo[path];
    if (known?.id === id) return known.sha256;
    const digest = await sha256FileCached(path);
    // Hashed from a file that changed meanwhile: not worth recording.
    if (digest === undefined || strongIdentity(path) !== id) return digest;
    memo[path] = { id, sha256: digest };
    for (const recorded of Object.keys(memo)) if (!existsSync(recorded)) delete memo[recorded];
    try {
      writeJsonAtomic(memoFile, memo);
    } catch {
      // the next process hashes again
    }
    return digest;
  };
}
