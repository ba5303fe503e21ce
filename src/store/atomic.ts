import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { FleetboxError } from '../protocol/errors.js';

export interface AtomicWriteOptions {
  /**
   * fsync before the rename (default), so even a power cut leaves the old or the new content.
   * Without it a process crash still never tears the file (the page cache outlives the process);
   * only for files whose readers take a torn file as missing.
   */
  durable?: boolean;
}

/**
 * Writes a file so that readers see either the old or the new content, never a torn one:
 * write a temporary file beside it, fsync it, rename over the target.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600, options: AtomicWriteOptions = {}): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, content);
    if (options.durable !== false) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary file may never have been created
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    const why = code === 'ENOSPC' ? ' (no space left on the device)' : '';
    throw new FleetboxError('io', `cannot write ${path}: ${code}${why}`, { cause: error });
  }
}

export function writeJsonAtomic(path: string, value: unknown, options: AtomicWriteOptions = {}): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', 0o600, options);
}

/** Reads and validates a JSON file; a missing file is `undefined`, a corrupt one an error. */
export function readJson<T extends z.ZodType>(path: string, schema: T): z.infer<T> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FleetboxError('io', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new FleetboxError('state_corrupt', `${path} is not valid JSON; remove it or run 'fleetbox rm'`, {
      cause: error,
    });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new FleetboxError('state_corrupt', `${path} has an unexpected shape: ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}
