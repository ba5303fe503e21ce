import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The last `maxBytes` of a file as text, read without loading the rest ('' when it cannot be read). */
export function readTail(path: string, maxBytes = 65_536): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

/** The last `count` non-empty lines of a file (of at most its last 16 KiB), for error messages. */
export function tailLines(path: string, count: number): string[] {
  return readTail(path, 16_384).split('\n').filter(Boolean).slice(-count);
}
