import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { up } from '../../dist/control/up.js';
import { getStatus } from '../../dist/control/status.js';
import { listMembers } from '../../dist/store/members.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import type { Store } from '../../dist/store/layout.js';
import { CLI, ROOT, alive, destroyStore, eventually, processesOf, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;
afterEach(async () => {
  delete process.env.FLEETBOX_TEST_HOLDER_VERSION;
  await destroyStore(store);
});

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

describe('crashes and races', () => {
  it('kill -9 of a detached holder: members read as stopped, their processes die, the next up starts fresh', async () => {
    store = tempStore();
    const result = await up(store, { names: ['crash'], count: 2, spec: { backend: 'process' } });
    const holderPid = result.spawned.get('crash')?.pid as number;
    const memberPids = result.members.map((m) => m.pid as number);
    process.kill(holderPid, 'SIGKILL');
    expect(await eventually(() => !isProcessAlive(holderPid))).toBe(true);
    // pdeathsig takes the member processes with the holder
    expect(await eventually(() => alive(memberPids).length === 0)).toBe(true);
    const views = await Promise.all(listMembers(store).map((ref) => getStatus(store, ref)));
    expect(views.map((v) => [v.state, v.running, v.source])).toEqual([
      ['stopped', false, 'disk'],
      ['stopped', false, 'disk'],
    ]);
    const ls = await cli(['ls', '--json']);
    expect(ls.code).toBe(0);
    expect((JSON.parse(ls.stdout) as { state: string }[]).map((v) => v.state)).toEqual(['stopped', 'stopped']);
    // stale pidfile and sockets are there until the next up cleans them
    const again = await up(store, { names: ['crash'] });
    expect(again.members.map((m) => m.state)).toEqual(['running', 'running']);
    expect(liveHolder(store.pidfilePath('crash', 'crash-1'))?.pid).not.toBe(holderPid);
  });

  it('kill -9 of a bound owner: every member process and the holder are gone', async () => {
    store = tempStore();
    const owner = spawn(process.execPath, [`${ROOT}/test/fixtures/bound-owner.mjs`, 'owned', '3'], {
      env: { ...process.env, FLEETBOX_HOME: store.home },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve) => createInterface({ input: owner.stdout }).once('line', resolve));
    const started = JSON.parse(line) as { holderPid: number; members: { pid: number }[] };
    const pids = [started.holderPid, ...started.members.map((m) => m.pid)];
    expect(alive(pids)).toHaveLength(4);
    owner.kill('SIGKILL');
    // asserted on /proc, not on the holder's word
    expect(await eventually(() => alive(pids).length === 0, 5_000)).toBe(true);
    expect(existsSync(store.controlSocketPath('owned'))).toBe(false);
  });

  it('an owner that dies between bind and ack takes nothing with it but its holder', async () => {
    store = tempStore();
    const owner = spawn(process.execPath, [`${ROOT}/test/fixtures/bound-owner.mjs`, 'preack', '1'], {
      env: { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_CRASH_AT: 'client-before-ack' },
      stdio: 'ignore',
    });
    await new Promise((resolve) => owner.once('exit', resolve));
    // the parent watch notices the re-parenting and the holder stops its member and exits
    expect(await eventually(() => processesOf(store).length === 0, 5_000)).toBe(true);
  });

  it('two concurrent ups of one cluster: exactly one holder, both succeed', async () => {
    store = tempStore();
    const [a, b] = await Promise.all([
      cli(['up', 'race', '-n', '2', '--backend', 'process']),
      cli(['up', 'race', '-n', '2', '--backend', 'process']),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const holders = new Set(listMembers(store).map((ref) => liveHolder(store.pidfilePath(ref.cluster, ref.name))?.pid));
    expect(holders.size).toBe(1);
    expect([...holders][0]).toBeTypeOf('number');
  });

  it('a holder of another protocol version is refused, stopped, and the message says which side is stale', async () => {
    store = tempStore();
    process.env.FLEETBOX_TEST_HOLDER_VERSION = '2';
    await expect(up(store, { names: ['ver'], spec: { backend: 'process' }, bound: true })).rejects.toMatchObject({
      code: 'version_mismatch',
      message: expect.stringMatching(/holder speaks protocol 2, client speaks 1.*Rebuild/),
    });
    expect(await eventually(() => processesOf(store).length === 0, 5_000)).toBe(true);
  });

  it('a control connection that closes before ack tears nothing down; a second owner is refused', async () => {
    store = tempStore();
    const result = await up(store, { names: ['probe'], spec: { backend: 'process' }, bound: true });
    const holder = result.spawned.get('probe');
    const exchange = (lines: string[]) =>
      new Promise<string[]>((resolve) => {
        const socket = connect(store.controlSocketPath('probe'));
        const replies: string[] = [];
        createInterface({ input: socket }).on('line', (l) => {
          replies.push(l);
          if (replies.length === lines.length) socket.end();
        });
        socket.on('close', () => resolve(replies));
        socket.once('connect', () => lines.forEach((l) => socket.write(l + '\n')));
      });
    const replies = await exchange(['{"cmd":"bind","version":"1"}']);
    expect(JSON.parse(replies[0] ?? '{}')).toMatchObject({ ok: false, error: { code: 'busy' } });
    const probe = connect(store.controlSocketPath('probe'));
    await new Promise((resolve) => probe.once('connect', resolve));
    probe.destroy();
    const mismatch = await exchange(['{"cmd":"bind","version":"9"}']);
    expect(JSON.parse(mismatch[0] ?? '{}')).toMatchObject({ ok: false, error: { code: 'version_mismatch' } });
    expect((await getStatus(store, { cluster: 'probe', name: 'probe-1' })).state).toBe('running');
    // the real owner closing is what ends it
    holder?.control?.end();
    expect(await eventually(() => processesOf(store).length === 0, 5_000)).toBe(true);
  });
});
