import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSnapshots, removeSnapshot, startCluster, type Cluster } from '../../dist/index.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

/*
 * Cluster snapshot and fork (`fleetbox snapshot`, `up --from`): one source cluster of two clones
 * is warmed (a file, a running counter) and saved once; the checks fork it from the CLI and the
 * library and break it. A one-member booted cluster with a disk covers the other machine shape.
 */

const run = promisify(execFile);
const skip = reportSkip('cluster snapshots on real VMs', cannotBootVms());
let store: Store;

function cli(args: string[], env: Record<string, string> = {}) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home, ...env }, timeout: 180_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Runs `command` in `member` through the CLI; fails the test on a non-zero exit. */
async function sh(member: string, command: string): Promise<string> {
  const r = await cli(['ssh', member, '--', command]);
  expect(r.code, `${member}: ${command}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

interface ListedMember {
  name: string;
  cluster: string;
  state: string;
  ip: string;
}

async function members(cluster: string): Promise<ListedMember[]> {
  const r = await cli(['ls', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as ListedMember[]).filter((m) => m.cluster === cluster).sort((a, b) => a.name.localeCompare(b.name));
}

/** The running QEMU processes whose command line names `member`'s QMP socket. */
function qemuOf(member: string): number[] {
  const socket = store.qmpSocketPath(member);
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(socket);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe.skipIf(skip)('cluster snapshot and fork on real VMs', () => {
  let counterBefore = 0;

  beforeAll(async () => {
    store = new Store(vmStore().home).ensure();
    const up = await cli(['up', 'sn', '-n', '2']);
    expect(up.code, up.stderr).toBe(0);
    await sh('sn-1', 'echo warm-one > /tmp/marker');
    await sh('sn-2', 'echo warm-two > /tmp/marker');
    // A process that runs on: a fork must carry it along, alive, mid-count.
    await sh('sn-1', '(i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done) >/dev/null 2>&1 &');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const saved = await cli(['snapshot', 'sn', 'warm', '--json']);
    expect(saved.code, saved.stderr).toBe(0);
    counterBefore = Number(await sh('sn-1', 'cat /tmp/count'));
  }, 300_000);

  afterAll(async () => {
    if (store) await destroyStore(store);
  }, 120_000);

  it('snapshot saves every member and lists it; the source runs on where it was', async () => {
    const listed = await cli(['snapshot', 'ls', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const [warm] = JSON.parse(listed.stdout) as { name: string; cluster: string; members: string[]; bytes: number; pausedMs: number }[];
    expect(warm).toMatchObject({ name: 'warm', cluster: 'sn', members: ['sn-1', 'sn-2'] });
    expect(warm?.bytes).toBeGreaterThan(1 << 20);
    expect(warm?.pausedMs).toBeGreaterThan(0);
    for (const member of ['sn-1', 'sn-2']) {
      expect(existsSync(join(store.snapshotDir('warm'), member, 'state'))).toBe(true);
    }
    // The source was paused, not restarted: its files and its counter are still there.
    expect(await sh('sn-1', 'cat /tmp/marker')).toBe('warm-one');
    expect(Number(await sh('sn-1', 'cat /tmp/count'))).toBeGreaterThanOrEqual(counterBefore);
    const status = await cli(['status', 'sn', '--json']);
    expect(status.code, status.stdout).toBe(0);
  });

  it('up --from: the members as saved (files, running processes, addresses), renamed, in their own network', async () => {
    const up = await cli(['up', 'fk', '--from', 'warm']);
    expect(up.code, up.stderr).toBe(0);
    const source = await members('sn');
    const fork = await members('fk');
    expect(fork.map((m) => m.name)).toEqual(['fk-1', 'fk-2']);
    expect(fork.map((m) => m.state)).toEqual(['running', 'running']);
    expect(fork.map((m) => m.ip)).toEqual(source.map((m) => m.ip));
    expect(await sh('fk-1', 'hostname')).toBe('fk-1');
    expect(await sh('fk-2', 'hostname')).toBe('fk-2');
    expect(await sh('fk-1', 'cat /tmp/marker')).toBe('warm-one');
    expect(await sh('fk-2', 'cat /tmp/marker')).toBe('warm-two');
    // The counter saved mid-count runs on in the fork.
    const first = Number(await sh('fk-1', 'cat /tmp/count'));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(Number(await sh('fk-1', 'cat /tmp/count'))).toBeGreaterThan(first);
    // The fork's members reach each other by name and address, in the fork's namespace.
    expect(await sh('fk-1', 'ping -c 1 -W 5 fk-2 >/dev/null && echo reached')).toBe('reached');
    // What a fork does is its own: the source does not see it.
    await sh('fk-1', 'echo forked > /tmp/marker');
    expect(await sh('sn-1', 'cat /tmp/marker')).toBe('warm-one');
    const listed = JSON.parse((await cli(['snapshot', 'ls', '--json'])).stdout) as { forks: string[] }[];
    expect(listed[0]?.forks).toEqual(['fk']);
    // A fork member restores the snapshot at every start: down + up puts it back as saved.
    await sh('fk-2', 'echo changed > /tmp/marker');
    expect((await cli(['down', 'fk-2'])).code).toBe(0);
    const again = await cli(['up', 'fk-2']);
    expect(again.code, again.stderr).toBe(0);
    expect(await sh('fk-2', 'cat /tmp/marker')).toBe('warm-two');
    expect(await sh('fk-2', 'hostname')).toBe('fk-2');
    expect(await sh('fk-1', 'ping -c 1 -W 5 fk-2 >/dev/null && echo reached')).toBe('reached');
    // The whole fork stopped (its holder and network gone) and started again, its network record
    // lost meanwhile: a new network, at the snapshot's addresses, which its restored guests have.
    expect((await cli(['down', 'fk'])).code).toBe(0);
    writeFileSync(store.networkPath('fk'), '{ torn');
    const restarted = await cli(['up', 'fk']);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect((await members('fk')).map((m) => m.ip)).toEqual(source.map((m) => m.ip));
    expect(await sh('fk-1', 'cat /tmp/marker')).toBe('warm-one');
    expect(await sh('fk-1', 'ping -c 1 -W 5 fk-2 >/dev/null && echo reached')).toBe('reached');
  });

  it('startCluster({ from }): a library fork, its own RNG state, destroyed with its owner', async () => {
    const fork: Cluster = await startCluster({ name: 'lib', from: 'warm', home: store.home });
    try {
      expect(fork.members.map((m) => m.name)).toEqual(['lib-1', 'lib-2']);
      const marker = await fork.member('lib-2').exec('cat /tmp/marker');
      expect(marker.stdout.trim()).toBe('warm-two');
      // Two forks of one snapshot must not draw the same random numbers.
      const a = (await fork.member('lib-1').exec('head -c 16 /dev/urandom | od -An -tx1')).stdout;
      const b = await sh('fk-1', 'head -c 16 /dev/urandom | od -An -tx1');
      expect(a.trim()).not.toBe(b);
      expect(listSnapshots({ home: store.home }).find((s) => s.name === 'warm')?.forks).toEqual(['fk', 'lib']);
      // A fork can be saved in turn, from the library.
      const info = await fork.snapshot('of-lib');
      expect(info).toMatchObject({ name: 'of-lib', cluster: 'lib', members: ['lib-1', 'lib-2'] });
      removeSnapshot('of-lib', { home: store.home });
    } finally {
      await fork.destroy();
    }
    expect(await members('lib')).toEqual([]);
    expect(qemuOf('lib-1')).toEqual([]);
    expect(() => removeSnapshot('warm', { home: store.home })).toThrow(/cluster fk was forked from warm/);
  });

  it('bad input: one line each, non-zero exit, nothing made', async () => {
    const cases: [string[], number, RegExp][] = [
      [['snapshot', 'sn', 'warm'], 2, /a snapshot named warm exists/],
      [['snapshot', 'nosuch', 'x1'], 3, /no cluster named nosuch/],
      [['snapshot', 'sn', 'Bad_Name'], 2, /invalid snapshot name/],
      [['up', 'zz', '--from', 'nope'], 3, /no snapshot named nope/],
      [['up', 'fk', '--from', 'warm'], 2, /cluster fk exists; a fork is a new cluster/],
      [['up', 'zz-1', '--from', 'warm'], 2, /--from takes a cluster name/],
      [['up', 'zz', '--from', 'warm', '--mem', '512'], 2, /drop --mem/],
      [['up', 'zz', '--from', 'warm', '-n', '3'], 2, /has 2 member\(s\)/],
      [['snapshot', 'rm', 'warm'], 2, /cluster fk was forked from warm/],
      [['snapshot', 'rm', 'nope'], 3, /no snapshot named nope/],
    ];
    for (const [args, code, said] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(said);
    }
    expect(await members('zz')).toEqual([]);
    expect(readdirSync(store.snapshotsDir)).toEqual(['warm']);
  });

  it('a snapshot of process members or of a stopped cluster is refused, and nothing stays paused', async () => {
    const up = await cli(['up', 'pr', '-n', '1', '--backend', 'process']);
    expect(up.code, up.stderr).toBe(0);
    const proc = await cli(['snapshot', 'pr', 'px']);
    expect(proc.code).toBe(2);
    expect(proc.stderr).toMatch(/pr-1 is a process member, which cannot be saved/);
    expect((await cli(['down', 'pr'])).code).toBe(0);
    const stopped = await cli(['snapshot', 'pr', 'px']);
    expect(stopped.code).not.toBe(0);
    expect(stopped.stderr).toMatch(/not running/);
    expect(readdirSync(store.snapshotsDir)).toEqual(['warm']);
    // The source still answers (it was never paused for a refused snapshot).
    expect(await sh('sn-2', 'cat /tmp/marker')).toBe('warm-two');
  });

  it('a fault order while a snapshot holds the members paused is refused at once (busy), and lands nowhere later', async () => {
    // The holder waits 4 s at its paused step (test hook), so the order surely meets the snapshot there.
    const up = await cli(['up', 'hb', '-n', '1'], { FLEETBOX_HOLD_AT: 'holder-mid-snapshot:4000' });
    expect(up.code, up.stderr).toBe(0);
    const saving = cli(['snapshot', 'hb', 'held']);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const t0 = Date.now();
    const pause = await cli(['fault', 'pause', 'hb-1']);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(pause.code).not.toBe(0);
    expect(pause.stderr).toMatch(/a snapshot of hb is being taken; retry when it is done/);
    expect((await saving).code).toBe(0);
    const listed = await cli(['fault', 'ls', '--json']);
    expect(listed.stdout).toBe('[]\n');
    expect(await sh('hb-1', 'echo alive')).toBe('alive');
    expect((await cli(['rm', 'hb', '--yes'])).code).toBe(0);
    expect((await cli(['snapshot', 'rm', 'held'])).code).toBe(0);
  });

  it('a booted member with a disk: the disk comes along, as it was at the save', async () => {
    const up = await cli(['up', 'dk', '-n', '1', '--disk', '32']);
    expect(up.code, up.stderr).toBe(0);
    await sh('dk-1', 'echo on-disk > /data/file && sync');
    expect((await cli(['snapshot', 'dk', 'dsnap'])).code).toBe(0);
    await sh('dk-1', 'echo changed-after > /data/file && sync');
    const fork = await cli(['up', 'dkf', '--from', 'dsnap']);
    expect(fork.code, fork.stderr).toBe(0);
    expect(await sh('dkf-1', 'cat /data/file')).toBe('on-disk');
    expect(await sh('dk-1', 'cat /data/file')).toBe('changed-after');
    expect((await cli(['rm', 'dk', 'dkf', '--yes'])).code).toBe(0);
  });

  it('a truncated or changed state file is refused with a clear line; no QEMU is left running', async () => {
    expect((await cli(['up', 'tr', '-n', '2'])).code).toBe(0);
    // A cluster with a stopped member is refused by its holder, and nothing is made or paused.
    expect((await cli(['down', 'tr-2'])).code).toBe(0);
    const stopped = await cli(['snapshot', 'tr', 'broken']);
    expect(stopped.code).not.toBe(0);
    expect(stopped.stderr).toMatch(/tr-2 is stopped; a snapshot takes a cluster whose members all run/);
    expect(readdirSync(store.snapshotsDir)).not.toContain('broken');
    expect(readdirSync(store.snapshotsDir).filter((name) => name.startsWith('.partial-'))).toEqual([]);
    expect((await cli(['rm', 'tr-2', '--yes'])).code).toBe(0);
    // A damaged snapshot folder (no manifest) takes its name: refused before anything is saved,
    // listed with its problem, and removable.
    mkdirSync(store.snapshotDir('dmg'));
    const damaged = await cli(['snapshot', 'tr', 'dmg']);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(/a snapshot named dmg exists/);
    expect((JSON.parse((await cli(['snapshot', 'ls', '--json'])).stdout) as { name: string; problem?: string }[]).find((x) => x.name === 'dmg')).toMatchObject({ problem: 'no manifest' });
    expect((await cli(['snapshot', 'rm', 'dmg'])).code).toBe(0);
    expect((await cli(['snapshot', 'tr', 'broken'])).code).toBe(0);
    const state = join(store.snapshotDir('broken'), 'tr-1', 'state');
    // Other bytes at the same size (its times change with them).
    const fd = openSync(state, 'r+');
    writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 65_536);
    closeSync(fd);
    const changed = await cli(['up', 'tb', '--from', 'broken']);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/tb-1 cannot be restored from snapshot broken: the state file of tr-1 is missing, truncated or was changed/);
    expect(qemuOf('tb-1')).toEqual([]);
    truncateSync(state, 4096);
    const truncated = await cli(['up', 'tb']);
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toMatch(/truncated or was changed/);
    expect(qemuOf('tb-1')).toEqual([]);
    expect((await cli(['rm', 'tb', 'tr', '--yes'])).code).toBe(0);
    expect((await cli(['snapshot', 'rm', 'broken'])).code).toBe(0);
  });
});
