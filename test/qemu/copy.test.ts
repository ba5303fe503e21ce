import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, type Member } from '../../dist/index.js';
import { copyFromMember, copyToMember } from '../../dist/lib/copy.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, describeTree, destroyStore } from '../helpers.js';
import { scratch } from '../scratch.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

const run = promisify(execFile);
const skip = reportSkip('fleetbox cp on a real VM', cannotBootVms());
const ref = { cluster: 'cpq', name: 'cpq-1' };
let store: Store;
let member: Member;

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home }, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** A command in the guest; its output, failing the test on a non-zero exit. */
async function guest(command: string): Promise<string> {
  const result = await member.exec(command, { timeoutMs: 30_000 });
  expect(result.exitCode, `${command}\n${result.stderr}`).toBe(0);
  return result.stdout;
}


/** A tree with an executable, a hidden file, a read-only file, a subdirectory and a symlink. */
function makeTree(parent: string): string {
  const root = join(parent, 'tree');
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho tree-run\n');
  chmodSync(join(root, 'run.sh'), 0o750);
  writeFileSync(join(root, '.hidden'), 'secret');
  chmodSync(join(root, '.hidden'), 0o600);
  writeFileSync(join(root, 'sub', 'deeper', 'note'), 'read only');
  chmodSync(join(root, 'sub', 'deeper', 'note'), 0o400);
  symlinkSync('../run.sh', join(root, 'sub', 'link'));
  chmodSync(join(root, 'sub'), 0o711);
  chmodSync(root, 0o755);
  return root;
}

function executable(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

const stagesLeft = (dir: string) => `ls -a ${dir} | grep -c '^\\.fleetbox-cp\\.' || true`;

// One VM for the whole file: boots are the expensive part of this suite.
describe.skipIf(skip)('fleetbox cp on a real VM', () => {
  beforeAll(async () => {
    store = new Store(vmStore().home).ensure();
    const up = await cli(['up', 'cpq']);
    expect(up.code, up.stderr).toBe(0);
    const [first] = (await attach('cpq', { home: store.home })).members;
    member = first as Member;
  }, 300_000);

  afterAll(async () => {
    if (store) await destroyStore(store);
  });

  it('keeps the executable bit both ways', async () => {
    const dir = scratch();
    const tool = join(dir, 'tool');
    writeFileSync(tool, '#!/bin/sh\necho tool-ran\n');
    chmodSync(tool, 0o750);
    expect(await cli(['cp', tool, 'cpq-1:/root/tool'])).toMatchObject({ code: 0, stderr: '' });
    expect(await guest('stat -c %a /root/tool && /root/tool')).toBe('750\ntool-ran\n');

    await guest(`printf '#!/bin/sh\\necho guest-ran\\n' > /tmp/g.sh && chmod 711 /tmp/g.sh`);
    expect(await cli(['cp', 'cpq-1:/tmp/g.sh', join(dir, 'g.sh')])).toMatchObject({ code: 0, stderr: '' });
    expect((statSync(join(dir, 'g.sh')).mode & 0o7777).toString(8)).toBe('711');
    expect(execFileSync(join(dir, 'g.sh'), { encoding: 'utf8' })).toBe('guest-ran\n');
  }, 120_000);

  it('a file bigger than one request streams in (staged archive) and out over the bulk port, byte for byte; nothing staged is left', async () => {
    const dir = scratch();
    const big = join(dir, 'big.bin');
    writeFileSync(big, randomBytes(3 << 20));
    expect(await cli(['cp', big, 'cpq-1:/root/big.bin'])).toMatchObject({ code: 0, stderr: '' });
    const local = createHash('sha256').update(readFileSync(big)).digest('hex');
    expect(await guest('sha256sum /root/big.bin | cut -d" " -f1')).toBe(`${local}\n`);
    expect(await guest("ls -a /tmp | grep -c '^\\.fleetbox-cp\\.in\\.' || true")).toBe('0\n');
    // And back out, piece by piece from an offset.
    expect(await cli(['cp', 'cpq-1:/root/big.bin', join(dir, 'back.bin')])).toMatchObject({ code: 0, stderr: '' });
    expect(readFileSync(join(dir, 'back.bin')).equals(readFileSync(big))).toBe(true);
    // Both ways went over the bulk port, not the agent's fallback.
    expect(readFileSync(store.holderLogPath('cpq'), 'utf8')).not.toContain('bulk_port_unusable');
  }, 120_000);

  it('-r copies a tree with a subdirectory and a symlink both ways; an existing directory receives the source under its name', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    expect(await cli(['cp', '-r', tree, 'cpq-1:/tmp/t1'])).toMatchObject({ code: 0, stderr: '' });
    expect(await guest('cd /tmp/t1 && stat -c %a . run.sh .hidden sub sub/deeper/note && [ -L sub/link ] && readlink sub/link && sub/link')).toBe(
      '755\n750\n600\n711\n400\n../run.sh\ntree-run\n',
    );
    expect(await cli(['cp', '-r', 'cpq-1:/tmp/t1', join(dir, 'back')])).toMatchObject({ code: 0, stderr: '' });
    expect(describeTree(join(dir, 'back'))).toEqual(describeTree(tree));

    // /tmp/t1 exists now: like cp -r, the tree goes inside it.
    expect(await cli(['cp', '-r', tree, 'cpq-1:/tmp/t1'])).toMatchObject({ code: 0 });
    expect(await guest('readlink /tmp/t1/tree/sub/link && stat -c %a /tmp/t1/tree/sub')).toBe('../run.sh\n711\n');
    // a file onto an existing directory path lands inside it
    expect(await cli(['cp', join(tree, 'run.sh'), 'cpq-1:/tmp/'])).toMatchObject({ code: 0 });
    expect(await guest('stat -c %a /tmp/run.sh && /tmp/run.sh')).toBe('750\ntree-run\n');
    // library: into an existing local directory
    mkdirSync(join(dir, 'into'));
    await copyFromMember(store, ref, '/tmp/t1', join(dir, 'into'), { recursive: true });
    expect(readdirSync(join(dir, 'into'))).toEqual(['t1']);
    expect(describeTree(join(dir, 'into', 't1', 'tree'))).toEqual(describeTree(tree));
    expect((await guest(stagesLeft('/tmp'))).trim()).toBe('0');
  }, 180_000);

  it('a directory without -r is refused with one line and exit 2 in both directions, and nothing is created', async () => {
    const dir = scratch();
    const tree = makeTree(dir);
    const up = await cli(['cp', tree, 'cpq-1:/tmp/flagless']);
    expect(up).toMatchObject({ code: 2, stderr: `fleetbox: ${tree} is a directory; add -r to copy it (library: recursive: true)\n` });
    const down = await cli(['cp', 'cpq-1:/etc', join(dir, 'etc')]);
    expect(down).toMatchObject({ code: 2, stderr: 'fleetbox: cpq-1:/etc is a directory; add -r to copy it (library: recursive: true)\n' });
    await expect(copyToMember(store, ref, tree, '/tmp/flagless')).rejects.toMatchObject({ code: 'usage' });
    expect(await guest('[ -e /tmp/flagless ] && echo exists || echo absent')).toBe('absent\n');
    expect(existsSync(join(dir, 'etc'))).toBe(false);
  }, 120_000);

  it('replacing a binary a guest process is running: the copy succeeds and the process lives on', async () => {
    const dir = scratch();
    // A long-running program executed from a copy of busybox (named sleep: busybox picks the
    // applet by its own name); wait until it really runs from that file.
    const started = await guest(
      'cp /bin/busybox /tmp/sleep || exit 1\n' +
        'setsid /tmp/sleep 600 </dev/null >/dev/null 2>&1 &\n' +
        'p=$!; i=0\n' +
        'while [ "$(readlink /proc/$p/exe)" != /tmp/sleep ] && [ $i -lt 250 ]; do usleep 20000; i=$((i+1)); done\n' +
        'echo $p; stat -c %i /tmp/sleep; readlink /proc/$p/exe',
    );
    const [pid, inode, exe] = started.trim().split('\n');
    expect(exe).toBe('/tmp/sleep');
    try {
      // Written in place this is "Text file busy"; a mapped library would crash its process.
      const replacement = executable(dir, 'replacement', '#!/bin/sh\necho replaced-binary\n');
      expect(await cli(['cp', replacement, 'cpq-1:/tmp/sleep'])).toMatchObject({ code: 0, stderr: '' });
      const after = await guest(`kill -0 ${pid} && echo alive; readlink /proc/${pid}/exe; stat -c %i /tmp/sleep; /tmp/sleep`);
      const [alive, oldExe, newInode, ran] = after.trim().split('\n');
      expect({ alive, oldExe, ran }).toEqual({ alive: 'alive', oldExe: '/tmp/sleep (deleted)', ran: 'replaced-binary' });
      expect(newInode).not.toBe(inode);
    } finally {
      await member.exec(`kill ${pid}`);
    }
  }, 120_000);

  it('replacing a script that sh is still reading: the running script finishes with its old text', async () => {
    const dir = scratch();
    // sh reads a script as it goes; the padding puts the last line beyond any read-ahead, so a
    // file rewritten in place would be read from the new text at the old offset.
    const padding = `${'#'.repeat(63)}\n`.repeat(1024);
    const script = (version: string) => `echo started > /tmp/started\nread go < /tmp/go.fifo\n${padding}echo ${version} > /tmp/result\n`;
    const old = executable(dir, 'old.sh', script('old-version'));
    const next = executable(dir, 'new.sh', script('new-version'));
    expect(await cli(['cp', old, 'cpq-1:/tmp/s.sh'])).toMatchObject({ code: 0 });
    const pid = (
      await guest(
        'rm -f /tmp/started /tmp/result /tmp/go.fifo && mkfifo /tmp/go.fifo || exit 1\n' +
          'setsid sh /tmp/s.sh </dev/null >/dev/null 2>&1 &\n' +
          'p=$!; i=0\n' +
          'while [ ! -e /tmp/started ] && [ $i -lt 250 ]; do usleep 20000; i=$((i+1)); done\n' +
          '[ -e /tmp/started ] && echo $p',
      )
    ).trim();
    expect(pid).toMatch(/^\d+$/);
    expect(await cli(['cp', next, 'cpq-1:/tmp/s.sh'])).toMatchObject({ code: 0, stderr: '' });
    expect(await guest(`kill -0 ${pid} && echo alive`)).toBe('alive\n');
    const result = await guest(
      'echo go > /tmp/go.fifo\n' + 'i=0; while [ ! -s /tmp/result ] && [ $i -lt 250 ]; do usleep 20000; i=$((i+1)); done\n' + 'cat /tmp/result; grep -c new-version /tmp/s.sh',
    );
    expect(result).toBe('old-version\n1\n');
  }, 120_000);

  it('a missing source or remote path: exit 3 and one line naming it; nothing half-written on either side', async () => {
    const dir = scratch();
    const absent = await cli(['cp', join(dir, 'absent'), 'cpq-1:/tmp/x']);
    expect(absent).toMatchObject({ code: 3, stderr: `fleetbox: cannot copy ${join(dir, 'absent')}: no such file or directory\n` });
    const remote = await cli(['cp', 'cpq-1:/no/such', join(dir, 'x')]);
    expect(remote).toMatchObject({ code: 3, stderr: 'fleetbox: cannot copy cpq-1:/no/such: no such file or directory\n' });
    const file = executable(dir, 'file', 'data');
    const noDir = await cli(['cp', file, 'cpq-1:/no/such/x']);
    expect(noDir).toMatchObject({ code: 3, stderr: 'fleetbox: cannot copy to cpq-1:/no/such/x: no such directory /no/such\n' });
    expect(readdirSync(dir)).toEqual(['file']);

    // A tree onto a file is refused, before anything lands, and the staging directory is gone.
    await guest('echo keep > /tmp/plain');
    const tree = makeTree(dir);
    const conflict = await cli(['cp', '-r', tree, 'cpq-1:/tmp/plain']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toBe('fleetbox: copy to cpq-1:/tmp/plain failed: cannot overwrite non-directory /tmp/plain with a directory\n');
    expect(await guest(`cat /tmp/plain; ${stagesLeft('/tmp')}`)).toBe('keep\n0\n');
  }, 120_000);
});
