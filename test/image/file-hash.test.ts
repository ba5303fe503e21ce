import { readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recordedHashes, sha256File } from '../../dist/image/file-hash.js';
import { scratch } from '../scratch.js';

describe('recorded file hashes (what lets `up` skip re-hashing the image)', () => {
  it('a later process trusts the recorded sha256 while the file is unchanged', async () => {
    const dir = scratch();
    const file = join(dir, 'kernel');
    const memo = join(dir, 'hashes.json');
    writeFileSync(file, 'the kernel');
    const real = await sha256File(file);
    expect(await recordedHashes(memo)(file)).toBe(real);
    // Proof that the next process reads the record instead of the file: a doctored record is believed.
    const record = JSON.parse(readFileSync(memo, 'utf8')) as Record<string, { id: string; sha256: string }>;
    writeFileSync(memo, JSON.stringify({ [file]: { ...record[file], sha256: 'recorded' } }));
    expect(await recordedHashes(memo)(file)).toBe('recorded');
  });

  it('a same-size rewrite with its mtime put back is hashed again (ctime moved)', async () => {
    const dir = scratch();
    const file = join(dir, 'kernel');
    const memo = join(dir, 'hashes.json');
    writeFileSync(file, 'aaaa');
    await recordedHashes(memo)(file);
    const { atime, mtime } = statSync(file);
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeFileSync(file, 'bbbb');
    utimesSync(file, atime, mtime);
    expect(await recordedHashes(memo)(file)).toBe(await sha256File(file));
  });

  it('a missing file has no hash; an unreadable record costs a hash, not a wrong answer; records of gone files are dropped', async () => {
    const dir = scratch();
    const memo = join(dir, 'hashes.json');
    expect(await recordedHashes(memo)(join(dir, 'nothing'))).toBeUndefined();
    const gone = join(dir, 'gone');
    writeFileSync(gone, 'x');
    await recordedHashes(memo)(gone);
    rmSync(gone);
    const file = join(dir, 'file');
    writeFileSync(file, 'y');
    await recordedHashes(memo)(file);
    expect(Object.keys(JSON.parse(readFileSync(memo, 'utf8')) as object)).toEqual([file]);
    writeFileSync(memo, '{ not json');
    expect(await recordedHashes(memo)(file)).toBe(await sha256File(file));
  });
});
