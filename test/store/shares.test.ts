import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkShare, checkShares, parseShareSpec } from '../../dist/store/shares.js';

const root = mkdtempSync('/tmp/fbx-shares-');
const home = join(root, 'home');
const app = join(root, 'app');
mkdirSync(home);
mkdirSync(app);
writeFileSync(join(root, 'file'), 'x');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('--share SRC[:DST][:ro|rw]', () => {
  it('parses the four forms, relative sources against the working folder', () => {
    expect(parseShareSpec('./build', '/w')).toEqual({ host: '/w/build', guest: '/w/build', readOnly: false });
    expect(parseShareSpec('./build:ro', '/w')).toEqual({ host: '/w/build', guest: '/w/build', readOnly: true });
    expect(parseShareSpec('/b:/opt/app', '/w')).toEqual({ host: '/b', guest: '/opt/app', readOnly: false });
    expect(parseShareSpec('/b:/opt/app:rw', '/w')).toEqual({ host: '/b', guest: '/opt/app', readOnly: false });
  });

  it('refuses malformed specs with the expected form', () => {
    for (const bad of ['', ':/x', '/a:/b:/c', '/a::ro', '/a:/b:xx:ro']) {
      expect(() => parseShareSpec(bad), bad).toThrow(/--share takes SRC\[:DST\]\[:ro\|rw\]/);
    }
  });

  it('checks the host side: exists, a directory, resolved through links, not the fleetbox home', () => {
    symlinkSync(app, join(root, 'link'));
    expect(checkShare({ host: join(root, 'link'), guest: '/opt/app/' }, home)).toEqual({ host: app, guest: '/opt/app', readOnly: false });
    expect(() => checkShare({ host: join(root, 'nope'), guest: '/x' }, home)).toThrow(/does not exist \(ENOENT\)/);
    expect(() => checkShare({ host: join(root, 'file'), guest: '/x' }, home)).toThrow(/not a directory/);
    expect(() => checkShare({ host: home, guest: '/x' }, home)).toThrow(/fleetbox home/);
    expect(() => checkShare({ host: root, guest: '/x' }, home)).toThrow(/is or holds the fleetbox home/);
  });

  it('checks the guest side: absolute, plain characters, not / or a system folder, one share per path', () => {
    for (const guest of ['relative', '/', '/proc', '/sys/x', '/dev', '/run/fleetbox', '/a b', '/a,b', '/a:b']) {
      expect(() => checkShare({ host: app, guest }, home), guest).toThrow(/cannot mount a share at/);
    }
    expect(checkShare({ host: app, guest: '/running' }, home).guest).toBe('/running');
    expect(() => checkShares([{ host: app, guest: '/x' }, { host: app, guest: '/x/' }], home)).toThrow(/two shares mount at \/x/);
  });
});
