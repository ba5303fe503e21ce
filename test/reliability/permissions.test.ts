import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../dist/store/layout.js';
import { destroyStore, tempStore } from '../helpers.js';
import { cli } from './harness.js';
import { assertNoLeftovers, storeProcesses } from './leftovers.js';
import { PartReport } from './report.js';

const report = new PartReport('5', 'Permissions: modes, other users, names and symlinks');
let store: Store | undefined;
const outside: string[] = [];
afterEach(async () => {
  try {
    if (store && existsSync(store.home)) await destroyStore(store);
  } finally {
    store = undefined;
    for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
});
afterAll(() => report.flush());

/** Every path under `dir` with its lstat, depth first. */
function walk(dir: string): { path: string; mode: number; kind: 'dir' | 'file' | 'socket' | 'link' | 'other' }[] {
  const out: ReturnType<typeof walk> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSocket() ? 'socket' : 'other';
    out.push({ path, mode: st.mode & 0o777, kind });
    if (kind === 'dir') out.push(...walk(path));
  }
  return out;
}

/** Runs `script` with node as another (non-root) user; it prints one JSON line. */
function asUser(uid: number, gid: number, script: string): Record<string, string> {
  const out = execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', script], {
    encoding: 'utf8',
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return JSON.parse(out) as Record<string, string>;
}

/** What another user gets when it tries each of `sockets` (connect) and `files` (read). */
const PROBE = `
const net = require('node:net'), fs = require('node:fs');
const [sockets, files] = JSON.parse(process.argv[1]);
const result = {};
const tryConnect = (p) => new Promise((resolve) => {
  const s = net.connect(p);
  s.once('connect', () => { s.destroy(); resolve('CONNECTED'); });
  s.once('error', (e) => resolve(e.code));
});
(async () => {
  for (const p of sockets) result[p] = await tryConnect(p);
  for (const p of files) { try { fs.readFileSync(p); result[p] = 'READ'; } catch (e) { result[p] = e.code; } }
  process.stdout.write(JSON.stringify(result) + '\\n');
})();
`;

describe('permissions', () => {
  it('the store is 0700 throughout, sockets and every file 0600', async () => {
    store = tempStore();
    const s = store;
    await report.check('modes of everything `up` creates (home, dirs, sockets, pidfiles, state, logs, key)', 'home and every directory 0700; sockets, pidfiles, state, logs and any key 0600', async () => {
      expect((await cli(s, ['up', 'perm', '-n', '2', '--backend', 'process'])).code).toBe(0);
      expect(lstatSync(s.home).mode & 0o777).toBe(0o700);
      const all = walk(s.home);
      const wrong = all.filter((e) => (e.kind === 'dir' ? e.mode !== 0o700 : e.mode & 0o077)).map((e) => `${relative(s.home, e.path)} ${e.kind} ${e.mode.toString(8)}`);
      expect(wrong).toEqual([]);
      expect(all.filter((e) => e.kind === 'socket').map((e) => e.mode)).toEqual([0o600, 0o600, 0o600]);
      const keys = all.filter((e) => e.kind === 'file' && /key|id_ed25519|id_rsa/.test(e.path));
      for (const key of keys) expect(key.mode, key.path).toBe(0o600);
      if (keys.length === 0) report.note('No SSH key exists in the store yet (it comes with the qemu backend); the mode check covers every file, so it will cover the key when it lands.');
      // a home that was loosened by hand is tightened again by the next command
      chmodSync(s.home, 0o755);
      expect((await cli(s, ['ls', '-q'])).code).toBe(0);
      expect(lstatSync(s.home).mode & 0o777).toBe(0o700);
    });
  });

  it('another (non-root) user can neither connect to the sockets nor read the files, even with the directories opened', async () => {
    store = tempStore();
    const s = store;
    const user = `fbxrel${process.pid % 100_000}`;
    const added = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user], { encoding: 'utf8' });
    if (added.status !== 0) {
      report.note(`non-root check skipped: useradd failed (${added.stderr.trim()})`);
      console.warn(`skipping the non-root part: useradd failed: ${added.stderr.trim()}`);
      return;
    }
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
      expect(uid).toBeGreaterThan(0);
      expect((await cli(s, ['up', 'perm', '-n', '2', '--backend', 'process'])).code).toBe(0);
      // stands in for the per-installation SSH key until the qemu backend writes the real one
      const key = join(s.imagesDir, 'id_ed25519');
      writeFileSync(key, 'secret\n', { mode: 0o600 });
      const sockets = [s.memberSocketPath('perm-1'), s.memberSocketPath('perm-2'), s.controlSocketPath('perm')];
      const files = [s.configPath('perm', 'perm-1'), s.statePath('perm', 'perm-1'), s.pidfilePath('perm', 'perm-1'), s.networkPath('perm'), s.holderLogPath('perm'), key];
      const script = PROBE.replace('process.argv[1]', JSON.stringify(JSON.stringify([sockets, files])));
      await report.check('a non-root user (setpriv) connects to every socket and reads every file, store as created', 'all refused with EACCES (home is 0700)', async () => {
        const seen = asUser(uid, gid, script);
        expect(Object.values(seen)).toEqual([...sockets, ...files].map(() => 'EACCES'));
      });
      await report.check('the same with every directory on the way opened to 0755 by mistake', 'still all refused with EACCES (sockets and files are 0600 themselves)', async () => {
        const dirs = [s.home, s.runDir, s.clustersDir, s.clusterDir('perm'), s.memberDir('perm', 'perm-1'), s.imagesDir, s.logsDir];
        dirs.forEach((d) => chmodSync(d, 0o755));
        try {
          const seen = asUser(uid, gid, script);
          expect(Object.values(seen)).toEqual([...sockets, ...files].map(() => 'EACCES'));
        } finally {
          dirs.forEach((d) => chmodSync(d, 0o700));
        }
      });
    } finally {
      spawnSync('userdel', [user]);
    }
  });

  it('names can never make a path outside the store (fast-check, 5,000 names)', () => {
    const s = new Store('/tmp/fbx-names-never-created');
    const inside = (p: string) => resolve(p).startsWith(`${s.home}/`);
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.string({ unit: 'binary', maxLength: 40 }),
          fc.constantFrom('..', '.', '../x', 'a/../../b', '/etc', 'a\u0000b', 'ok-1/..', '~', '$HOME', 'a'.repeat(63), 'a'.repeat(64)),
          fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,70}$/),
        ),
        (name) => {
          let paths: string[];
          try {
            paths = [s.clusterDir(name), s.memberDir(name, name), s.configPath(name, name), s.holderLogPath(name), s.clusterLockPath(name), s.memberSocketPath(name), s.controlSocketPath(name)];
          } catch (error) {
            expect((error as { code?: string }).code).toBe('invalid_name');
            return;
          }
          accepted++;
          expect(paths.every(inside), name).toBe(true);
        },
      ),
      { numRuns: 5_000 },
    );
    report.add('5,000 generated names (path tricks, NUL, binary, over-long) through every path of the store', `refused as invalid_name or inside the store (${accepted} accepted, all inside)`, 5_000);
  });

  it('a symlink planted in clusters/ is refused, not followed, and rm --all leaves its target alone', async () => {
    store = tempStore();
    const s = store;
    const target = mkdtempSync('/tmp/fbx-outside-');
    outside.push(target);
    writeFileSync(join(target, 'sentinel'), 'keep me\n');
    const untouched = () => readdirSync(target).sort();
    // a planted cluster directory
    symlinkSync(target, join(s.clustersDir, 'evil'));
    // a planted member directory inside a real cluster
    expect((await cli(s, ['up', 'good', '--backend', 'process'])).code).toBe(0);
    symlinkSync(target, s.memberDir('good', 'good-2'));
    const attempts: [string, string[]][] = [
      ['`up evil` (clusters/evil is a symlink)', ['up', 'evil', '--backend', 'process']],
      ['`up evil-1` (member of a symlinked cluster)', ['up', 'evil-1', '--backend', 'process']],
      ['`up evil -n 2`', ['up', 'evil', '-n', '2', '--backend', 'process']],
      ['`up good-2` (clusters/good/good-2 is a symlink)', ['up', 'good-2', '--backend', 'process']],
      ['`up good -n 2` (takes the planted member along)', ['up', 'good', '-n', '2', '--backend', 'process']],
    ];
    for (const [what, args] of attempts) {
      await report.check(`symlink planted: ${what}`, 'refused with a clear error, nothing written through the link', async () => {
        const r = await cli(s, args);
        expect(r.code, `${args.join(' ')} must be refused: ${r.stderr}`).not.toBe(0);
        expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^fleetbox: .*symbolic link/);
        expect(untouched()).toEqual(['sentinel']);
      });
    }
    await report.check('symlinks planted: `rm --all`, `ls`, `status`', 'the links\' targets untouched; the real cluster removed', async () => {
      expect((await cli(s, ['ls', '--json'])).code).toBe(0);
      const rm = await cli(s, ['rm', '--all', '--yes']);
      expect(rm.code, rm.stderr).toBe(0);
      expect(untouched()).toEqual(['sentinel']);
      expect(storeProcesses(s)).toEqual([]);
    });
    // the planted links are the test's own; take them away before the leftover scan
    rmSync(join(s.clustersDir, 'evil'));
    rmSync(s.clusterDir('good'), { recursive: true, force: true });
    await assertNoLeftovers(s);
    rmSync(s.home, { recursive: true, force: true });
    expect(untouched()).toEqual(['sentinel']);
  });
});
