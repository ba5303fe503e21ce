import { scratch } from '../scratch.js';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { readJson, writeJsonAtomic } from '../../dist/store/atomic.js';
import { isFleetboxError } from '../../dist/protocol/errors.js';

const Shape = z.object({ n: z.number() });

describe('atomic JSON', () => {
  it('writes, reads back and leaves no temporary file', () => {
    const dir = scratch();
    writeJsonAtomic(`${dir}/x.json`, { n: 1 });
    writeJsonAtomic(`${dir}/x.json`, { n: 2 });
    expect(readJson(`${dir}/x.json`, Shape)).toEqual({ n: 2 });
    expect(readdirSync(dir)).toEqual(['x.json']);
  });

  it('reads a missing file as undefined and a torn one as state_corrupt', () => {
    const dir = scratch();
    expect(readJson(`${dir}/none.json`, Shape)).toBeUndefined();
    writeFileSync(`${dir}/torn.json`, '{"n": 1');
    expect(() => readJson(`${dir}/torn.json`, Shape)).toThrow(/not valid JSON/);
    writeFileSync(`${dir}/wrong.json`, '{"n": "one"}');
    try {
      readJson(`${dir}/wrong.json`, Shape);
      expect.unreachable();
    } catch (error) {
      expect(isFleetboxError(error, 'state_corrupt')).toBe(true);
    }
  });

  it('a failed write keeps the old content intact', () => {
    const dir = scratch();
    writeJsonAtomic(`${dir}/x.json`, { n: 1 });
    expect(() => writeJsonAtomic(`${dir}/missing-dir/x.json`, { n: 2 })).toThrow(/cannot write/);
    expect(JSON.parse(readFileSync(`${dir}/x.json`, 'utf8'))).toEqual({ n: 1 });
  });
});
