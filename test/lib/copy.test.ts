import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  closeSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../dist/index.js';
import { copyFromMember, copyInScript, copyOutScript, copyToMember, guestPath } from '../../dist/lib/copy.js';
import { findBinary } from '../../dist/host/binaries.js';
import type { Store } from '../../dist/store/layout.js';
import { CLI, describeTree, destroyStore, tempStore } from '../helpers.js';
import { scratch } from '../scratch.js';

const run = promisify(execFile);


/** A tree with what a copy must keep: modes, an executable, a hidden file, a subdirectory, a symlink. */
function makeTree(parent: string, name = 'tree'): string {
  const root = join(parent, name);
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho tree-run\n');
  chmodSync(join(root, 'run.sh'), 0o750);
  writeFileSync(join(root, '.hidden'), 'secret');
  chmodSync(join(root, '.hidden'), 0o600);
  writeFileSync(join(root, 'sub', 'data'), 'data');
  chmodSync(join(root, 'sub', 'data'), 0o644);
  writeFileSync(join(root, 'sub', 'deeper', 'note'), 'read only');
  chmodSync(join(root, 'sub', 'deeper', 'note'), 0o400);
  symlinkSync('../run.sh', join(root, 'sub', 'link'));
  chmodSync(join(root, 'sub'), 0o711);
  chmodSync(root, 0o755);
  return root;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const leftovers = (dir: string) => readdirSync(dir).filter((name) => name.startsWith('.fleetbox-cp.'));

describe('copy on a process member (host paths)', () => {
  let store: Store;
  let cluster: Cluster;
  const ref = () => ({ cluster: 'cpp', name: 'cpp-1' });

  beforeAll(async () => {
    store = tempStore();
    cluster = await startCluster({ name: 'cpp', backend: 'process', home: store.home });
  });
  afterAll(async () => {
    await cluster.destroy();
    await destroyStore(store);
  });

  it('keeps the mode bits of a file both ways', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\necho ok\n');
    chmodSync(join(dir, 'tool'), 0o750);
    await copyToMember(store, ref(), join(dir, 'tool'), join(dir, 'remote-tool'));
    expect((statSync(join(dir, 'remote-tool')).mode & 0o7777).toString(8)).toBe('750');
    chmodSync(join(dir, 'remote-tool'), 0o711);
    await copyFromMember(store, ref(), join(dir, 'remote-tool'), join(dir, 'back'));
    expect((statSync(join(dir, 'back')).mode & 0o7777).toString(8)).toBe('711');
    expect(execFileSync(join(dir, 'back'), { encoding: 'utf8' })).toBe('ok\n');
  });

  it('streams a big file in: 300 MiB arrive whole while the copying process holds a part of it', async () => {
    const dir = scratch();
    const big = join(dir, 'big');
    const block = Buffer.alloc(1 << 20);
    const fd = openSync(big, 'w');
    for (let i = 0; i < 300; i++) {
      block.writeUInt32LE(i, 0);
      writeSync(fd, block);
    }
    closeSync(fd);
    const before = process.resourceUsage().maxRSS;
    await copyToMember(store, ref(), big, join(dir, 'arrived'), { timeoutMs: 120_000 });
    const grewKiB = process.resourceUsage().maxRSS - before;
    expect(statSync(join(dir, 'arrived')).size).toBe(300 << 20);
    expect(sha256(join(dir, 'arrived'))).toBe(sha256(big));
    // The whole archive in memory (as before) grows this process's peak by 300 MiB and more; what
    // remains is garbage of the pieces (base64, request lines) the collector takes back lazily.
    expect(grewKiB).toBeLessThan(150 * 1024);
    expect(leftovers(dir)).toEqual([]);
    expect(readdirSync('/tmp').filter((name) => name.startsWith('.fleetbox-cp.in.'))).toEqual([]);
  });

  it('-r copies a tree (subdirectories, symlinks as links, modes); an existing directory receives it under its name', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    await copyToMember(store, ref(), tree, join(dir, 'copy'), { recursive: true });
    expect(describeTree(join(dir, 'copy'))).toEqual(describeTree(tree));
    // `copy` exists now: the second copy lands inside it, like cp -r.
    await copyFromMember(store, ref(), tree, join(dir, 'copy'), { recursive: true });
    expect(describeTree(join(dir, 'copy', 'tree'))).toEqual(describeTree(tree));
    // a file onto an existing directory path lands inside it too
    await copyToMember(store, ref(), join(tree, 'run.sh'), join(dir, 'copy'));
    expect(readFileSync(join(dir, 'copy', 'run.sh'), 'utf8')).toContain('tree-run');
    expect(leftovers(join(dir, 'copy'))).toEqual([]);
  });

  it('-r onto an existing copy merges file by file: changed files are replaced, others kept', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    mkdirSync(join(dir, 'parent'));
    await copyToMember(store, ref(), tree, join(dir, 'parent'), { recursive: true });
    writeFileSync(join(dir, 'parent', 'tree', 'only-here'), 'kept');
    writeFileSync(join(tree, 'sub', 'data'), 'changed');
    chmodSync(join(tree, 'sub', 'data'), 0o755);
    chmodSync(join(tree, 'sub'), 0o750);
    await copyToMember(store, ref(), tree, join(dir, 'parent'), { recursive: true });
    expect(readFileSync(join(dir, 'parent', 'tree', 'only-here'), 'utf8')).toBe('kept');
    expect(describeTree(join(dir, 'parent', 'tree')).filter((line) => !line.startsWith('only-here'))).toEqual(describeTree(tree));
    expect(readdirSync(join(dir, 'parent'))).toEqual(['tree']);
  });

  it('a directory without recursive is a usage error that says -r, and nothing is written', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    const refused = await copyToMember(store, ref(), tree, join(dir, 'nope')).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'usage', message: expect.stringMatching(/is a directory; add -r .*recursive: true/) });
    await expect(copyFromMember(store, ref(), tree, join(dir, 'nope'))).rejects.toMatchObject({ code: 'usage' });
    expect(existsSync(join(dir, 'nope'))).toBe(false);
  });

  it('missing source or destination directory: not_found, one line naming the path; nothing half-written', async () => {
    const dir = scratch();
    const missing = await copyToMember(store, ref(), join(dir, 'absent'), join(dir, 'x')).catch((error: Error) => error);
    expect(missing).toMatchObject({ code: 'not_found', message: `cannot copy ${join(dir, 'absent')}: no such file or directory` });
    const remote = await copyFromMember(store, ref(), join(dir, 'absent'), join(dir, 'x')).catch((error: Error) => error);
    expect(remote).toMatchObject({ code: 'not_found', message: `cannot copy cpp-1:${join(dir, 'absent')}: no such file or directory` });
    writeFileSync(join(dir, 'f'), 'f');
    await expect(copyToMember(store, ref(), join(dir, 'f'), join(dir, 'no', 'such', 'f'))).rejects.toMatchObject({ code: 'not_found' });
    // a directory onto a file is refused before anything moves
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'f'), 'new');
    await expect(copyToMember(store, ref(), join(dir, 'd'), join(dir, 'f'), { recursive: true })).rejects.toMatchObject({ code: 'io' });
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('f');
    await expect(copyToMember(store, ref(), join(dir, 'd'), join(dir, 'd', 'inner'), { recursive: true })).rejects.toMatchObject({ code: 'usage' });
    expect(readdirSync(dir).sort()).toEqual(['d', 'f']);
    expect(readdirSync(join(dir, 'd'))).toEqual(['f']);
  });

  it('replaces a binary that a process is running: the process lives on, the name gets a new inode', async () => {
    const dir = scratch();
    const sleep = findBinary('sleep') as string;
    copyFileSync(sleep, join(dir, 'sleeper'));
    chmodSync(join(dir, 'sleeper'), 0o755);
    const child = spawn(join(dir, 'sleeper'), ['600'], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('spawn', resolve));
    try {
      const before = statSync(join(dir, 'sleeper')).ino;
      writeFileSync(join(dir, 'new'), '#!/bin/sh\necho replaced\n');
      chmodSync(join(dir, 'new'), 0o755);
      // Written in place this fails with ETXTBSY (or, for a mapped library, crashes the process).
      await copyToMember(store, ref(), join(dir, 'new'), join(dir, 'sleeper'));
      expect(statSync(join(dir, 'sleeper')).ino).not.toBe(before);
      expect(execFileSync(join(dir, 'sleeper'), { encoding: 'utf8' })).toBe('replaced\n');
      expect(child.exitCode).toBeNull();
      expect(() => process.kill(child.pid as number, 0)).not.toThrow();
      expect(readlinkSync(`/proc/${child.pid}/exe`)).toMatch(/ \(deleted\)$/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('fleetbox cp [-r]: modes kept, a directory without -r exits 2 with one line, a missing source exits 3', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    const cli = (args: string[]) =>
      run(CLI, ['cp', ...args], { env: { ...process.env, FLEETBOX_HOME: store.home } }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
    expect(await cli(['-r', tree, `cpp-1:${join(dir, 'out')}`])).toEqual({ code: 0, stderr: '' });
    expect(describeTree(join(dir, 'out'))).toEqual(describeTree(tree));
    expect(await cli(['--recursive', `cpp-1:${tree}`, join(dir, 'out')])).toMatchObject({ code: 0 });
    expect(describeTree(join(dir, 'out', 'tree'))).toEqual(describeTree(tree));
    const noFlag = await cli([tree, `cpp-1:${join(dir, 'flagless')}`]);
    expect(noFlag.code).toBe(2);
    expect(noFlag.stderr).toBe(`fleetbox: ${tree} is a directory; add -r to copy it (library: recursive: true)\n`);
    const absent = await cli([join(dir, 'absent'), 'cpp-1:/tmp/x']);
    expect(absent).toEqual({ code: 3, stderr: `fleetbox: cannot copy ${join(dir, 'absent')}: no such file or directory\n` });
    expect(existsSync(join(dir, 'flagless'))).toBe(false);
  });
});

/*
 * The guest half of a qemu copy, run here under the shells and tools a guest can have: the
 * initramfs's busybox (its sh runs its own applets) and a Debian userland (dash or bash with GNU
 * coreutils and GNU tar). The real-VM test (test/qemu/copy.test.ts) covers the busybox guest end
 * to end; this one keeps the GNU side honest without a second guest image.
 */
const busybox = findBinary('busybox');
const FLAVOURS = [
  { name: 'busybox sh', shell: busybox ? [busybox, 'sh'] : [], gnu: false },
  { name: 'dash + GNU tools', shell: [findBinary('dash') ?? '/bin/sh'], gnu: true },
  { name: 'bash + GNU tools', shell: [findBinary('bash') ?? '/bin/bash'], gnu: true },
];

describe.each(FLAVOURS)('guest copy scripts under $name', ({ shell, gnu }) => {
  let env: Record<string, string>;
  beforeAll(() => {
    if (shell.length === 0) throw new Error('busybox is not installed: it is a fleetbox prerequisite (fleetbox setup --yes)');
    const home = scratch();
    if (gnu) {
      env = { PATH: '/usr/bin:/bin', HOME: home };
    } else {
      // Only busybox's applets on PATH: what the initramfs guest has.
      const applets = execFileSync(busybox as string, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
      mkdirSync(join(home, 'bin'));
      for (const applet of applets) symlinkSync(busybox as string, join(home, 'bin', applet));
      env = { PATH: join(home, 'bin'), HOME: home };
    }
  });

  const guest = (script: string, input?: string | Buffer) => spawnSync(shell[0] as string, [...shell.slice(1), '-c', script], { env, input, maxBuffer: 64 << 20 });

  /** What copyToMember does on the guest, with the host's tar and the guest's shell. */
  function copyIn(local: string, remote: string): { status: number | null; stderr: string } {
    const archive = execFileSync('tar', ['-c', '-f', '-', '-C', dirname(local), `./${basename(local)}`]);
    const script = copyInScript(guestPath(remote, remote), basename(local), basename(local), statSync(local).isDirectory());
    const result = guest(script, archive);
    return { status: result.status, stderr: result.stderr.toString() };
  }

  it('copies a file and a tree in with modes and links; an existing directory receives them; a re-copy merges', () => {
    const dir = scratch();
    const tree = makeTree(dir);
    expect(copyIn(tree, join(dir, 'in'))).toEqual({ status: 0, stderr: '' });
    expect(describeTree(join(dir, 'in'))).toEqual(describeTree(tree));
    expect(copyIn(tree, join(dir, 'in'))).toEqual({ status: 0, stderr: '' });
    expect(describeTree(join(dir, 'in', 'tree'))).toEqual(describeTree(tree));
    expect(copyIn(join(tree, 'run.sh'), `${join(dir, 'in')}/`)).toMatchObject({ status: 0 });
    expect((statSync(join(dir, 'in', 'run.sh')).mode & 0o777).toString(8)).toBe('750');
    writeFileSync(join(tree, 'sub', 'data'), 'changed');
    chmodSync(join(tree, 'sub'), 0o750);
    expect(copyIn(tree, join(dir, 'in'))).toMatchObject({ status: 0 });
    expect(describeTree(join(dir, 'in', 'tree'))).toEqual(describeTree(tree));
    expect(leftovers(join(dir, 'in'))).toEqual([]);
  });

  it('replaces a file by rename: a reader holding the old file keeps reading the old bytes', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'script'), 'old content');
    writeFileSync(join(dir, 'new'), 'new content, longer');
    chmodSync(join(dir, 'new'), 0o755);
    const before = statSync(join(dir, 'script')).ino;
    const fd = openSync(join(dir, 'script'), 'r');
    try {
      expect(copyIn(join(dir, 'new'), join(dir, 'script'))).toEqual({ status: 0, stderr: '' });
      const buffer = Buffer.alloc(64);
      expect(buffer.subarray(0, readSync(fd, buffer, 0, 64, 0)).toString()).toBe('old content');
    } finally {
      closeSync(fd);
    }
    expect(statSync(join(dir, 'script')).ino).not.toBe(before);
    expect(readFileSync(join(dir, 'script'), 'utf8')).toBe('new content, longer');
    expect((statSync(join(dir, 'script')).mode & 0o777).toString(8)).toBe('755');
  });

  it('refuses a missing directory (exit 3) and type conflicts (exit 6) and leaves nothing behind', () => {
    const dir = scratch();
    const tree = makeTree(dir);
    const missing = copyIn(join(tree, 'run.sh'), join(dir, 'no', 'such', 'x'));
    expect(missing.status).toBe(3);
    expect(missing.stderr.trim()).toBe(`no such directory ${join(dir, 'no', 'such')}`);
    writeFileSync(join(dir, 'file'), 'x');
    expect(copyIn(tree, join(dir, 'file')).status).toBe(6);
    mkdirSync(join(dir, 'has', 'tree', 'run.sh'), { recursive: true });
    const nested = copyIn(tree, join(dir, 'has'));
    expect(nested.status).toBe(6);
    expect(nested.stderr).toContain(`cannot overwrite directory ${join(dir, 'has', 'tree', 'run.sh')} with a file`);
    // the check pass ran before the move pass: nothing of the tree moved in
    expect(readdirSync(join(dir, 'has', 'tree'))).toEqual(['run.sh']);
    expect([...leftovers(dir), ...leftovers(join(dir, 'has'))]).toEqual([]);
  });

  it('copies out a tree (a symlink given as the path is followed), refuses a directory without -r and a missing path', () => {
    const dir = scratch();
    const tree = makeTree(dir);
    symlinkSync(tree, join(dir, 'via-link'));
    const staged = join(dir, 'packed.tar');
    const out = guest(copyOutScript(guestPath(join(dir, 'via-link'), 'x'), true, staged));
    expect(out.status).toBe(0);
    expect(Number(out.stdout.toString().trim())).toBe(statSync(staged).size);
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-x', '-o', '-p', '-f', staged, '-C', unpacked]);
    expect(describeTree(join(unpacked, 'tree'))).toEqual(describeTree(tree));
    expect(guest(copyOutScript(guestPath(tree, 'x'), false, staged)).status).toBe(4);
    const missing = guest(copyOutScript(guestPath(join(dir, 'absent'), 'x'), true, staged));
    expect(missing.status).toBe(3);
    expect(missing.stdout.toString()).toBe('');
  });
});
