import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reseedProgram } from '../../dist/image/reseed-program.js';
import { scratch } from '../scratch.js';

/*
 * The reseed program a copied guest runs (template clones, forks of a snapshot). It is run on
 * this host here: x86-64 Linux like the guests, and a reseed of the host's generator harms nothing.
 */

const root = process.getuid?.() === 0;
const EPERM = 1;

describe('the reseed program (RNDRESEEDCRNG)', () => {
  it('is a well-formed static x86-64 ELF with one loadable segment', () => {
    const elf = reseedProgram();
    expect(elf.length).toBe(189);
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(0x3e);
    expect(elf.readBigUInt64LE(24)).toBe(0x400078n);
    expect(elf.readUInt32LE(64)).toBe(1);
    expect(elf.readBigUInt64LE(96)).toBe(189n);
    expect(elf.subarray(-13).toString('latin1')).toBe('/dev/urandom\0');
  });

  it('reseeds the generator as root and is refused (EPERM) to anyone else', () => {
    const path = join(scratch(), 'reseed');
    writeFileSync(path, reseedProgram());
    chmodSync(path, 0o755);
    const asMe = spawnSync(path);
    expect(asMe.error).toBeUndefined();
    expect(asMe.status).toBe(root ? 0 : EPERM);
    if (root) {
      const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', path]);
      expect(nobody.status).toBe(EPERM);
    }
  });
});
