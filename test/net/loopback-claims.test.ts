import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimSubnet } from '../../dist/net/loopback-claims.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tmp(): string {
  const dir = mkdtempSync('/tmp/fbx-claims-');
  made.push(dir);
  return dir;
}

/** A store home whose cluster has (or has not) a network record, as the claim's liveness test reads it. */
function home(cluster: string, withRecord: boolean): string {
  const dir = tmp();
  if (withRecord) {
    mkdirSync(join(dir, 'clusters', cluster), { recursive: true });
    writeFileSync(join(dir, 'clusters', cluster, 'network.json'), '{}');
  }
  return dir;
}

describe('host-wide loopback subnet claims', () => {
  it('one store per subnet: a second store is refused while the first one\'s cluster has its record', () => {
    const dir = tmp();
    const a = { home: home('web', true), cluster: 'web' };
    const b = { home: home('web', true), cluster: 'web' };
    expect(claimSubnet('127.20.1', a, dir)).toBeUndefined();
    expect(claimSubnet('127.20.1', a, dir)).toBeUndefined(); // ours again: idempotent
    expect(claimSubnet('127.20.1', b, dir)).toMatch(/used by cluster web of the store at /);
    expect(claimSubnet('127.20.2', b, dir)).toBeUndefined();
  });

  it('a claim whose cluster record is gone (store removed) is taken over, leaving no aside file', () => {
    const dir = tmp();
    const gone = { home: home('old', false), cluster: 'old' };
    const next = { home: home('new', true), cluster: 'new' };
    expect(claimSubnet('127.30.9', gone, dir)).toBeUndefined();
    expect(claimSubnet('127.30.9', next, dir)).toBeUndefined();
    expect(readdirSync(dir)).toEqual(['127.30.9']);
    // and now it is the new owner's
    expect(claimSubnet('127.30.9', { home: home('x', true), cluster: 'x' }, dir)).toMatch(/cluster new/);
  });

  it('a torn claim file counts as stale', () => {
    const dir = tmp();
    writeFileSync(join(dir, '127.40.1'), '{"home":');
    expect(claimSubnet('127.40.1', { home: home('a', true), cluster: 'a' }, dir)).toBeUndefined();
  });
});
