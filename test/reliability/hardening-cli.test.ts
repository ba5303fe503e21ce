import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopMember } from '../../dist/control/stop.js';
import type { MemberView } from '../../dist/control/status.js';
import { writeNetworkRecord } from '../../dist/net/address-book.js';
import type { Store } from '../../dist/store/layout.js';
import { listMembers, writeMemberConfig } from '../../dist/store/members.js';
import { CLI, destroyStore, eventually, processesOf, ROOT, tempStore } from '../helpers.js';
import { cli } from './harness.js';
import { PartReport } from './report.js';

const report = new PartReport('7b', 'Hardening: CLI edges a hostile tester found (pipes, bad budgets, following, full clusters, races, progress)');
const P = ['--backend', 'process'];
const MEMBER_SERVER = join(ROOT, 'dist/backend/process/member-server.pl');
let store: Store | undefined;

afterEach(async () => {
  if (store) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

/** Members that were made and stopped: config only, the way a stopped member looks on disk. */
function fakeStoppedMembers(s: Store, cluster: string, count: number): void {
  const createdAt = new Date().toISOString();
  for (let i = 1; i <= count; i++) {
    writeMemberConfig(s, { name: `${cluster}-${i}`, cluster, backend: 'process', port: 7000, cpus: 1, memoryMiB: 256, diskMiB: 0, rootfs: 'initramfs', init: 'fleetbox', shares: [], fast: false, bootTimeoutMs: 120_000, createdAt });
  }
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawns bin/fleetbox; `exited` resolves with how it ended, or with null once `timeoutMs` passed. */
function start(s: Store, args: string[]) {
  const child = spawn(CLI, args, { env: { ...process.env, FLEETBOX_HOME: s.home }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const ended = new Promise<Ended>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, ...out })));
  const exited = (timeoutMs: number) =>
    Promise.race([ended, new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs).unref())]);
  return { child, out, exited };
}

describe('CLI edges', () => {
  it('13a: a reader that closes the pipe early (status --json | head -c 100) ends fleetbox quietly', async () => {
    store = tempStore();
    // Far more JSON than a pipe buffers (64 KiB) twice over, so the write after the close must fail.
    fakeStoppedMembers(store, 'big', 400);
    // A real `| head -c 100`: it reads once and exits, leaving fleetbox writing into a closed pipe.
    const ended = await new Promise<Ended>((resolve) => {
      execFile('bash', ['-o', 'pipefail', '-c', '"$0" status --json | head -c 100', CLI], { env: { ...process.env, FLEETBOX_HOME: store?.home } }, (error, stdout, stderr) => {
        const failure = error as (Error & { code?: number; signal?: NodeJS.Signals }) | null;
        resolve({ code: failure ? (failure.code ?? null) : 0, signal: failure?.signal ?? null, stdout, stderr });
      });
    });
    expect(ended.stdout).toMatch(/^\{/);
    expect(ended.stdout).toHaveLength(100);
    const quiet = ended.code === 0 && ended.stderr === '';
    report.add('status --json of 400 members into a pipe closed after 100 bytes', 'exit 0, nothing on stderr (was: EPIPE stack, exit 1)', 1, quiet);
    expect(ended.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(ended.code).toBe(0);
  });

  it('13b: down --timeout outside what a holder accepts is one line and exit 2, before any holder is asked', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 't', ...P])).code).toBe(0);
    for (const timeout of ['1000', '0.0001', 'abc', '0']) {
      const down = await cli(store, ['down', 't', '--timeout', timeout]);
      expect(down.code, `--timeout ${timeout}: ${down.stderr}`).toBe(2);
      expect(down.stderr).toBe(`fleetbox: --timeout must be seconds from 0.001 to 600, not ${timeout}\n`);
    }
    // The library applies the same rule (the wire schema's) before it asks the holder.
    await expect(stopMember(store, { cluster: 't', name: 't-1' }, { timeoutMs: 0.5 })).rejects.toMatchObject({ code: 'usage' });
    const ls = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(ls.map((v) => v.state)).toEqual(['running']);
    // The edges of the rule pass: 0.001 s is 1 ms, 600 s the holder's maximum.
    const edge = await cli(store, ['down', 't', '--timeout', '600']);
    expect(edge.code, edge.stderr).toBe(0);
    report.add('down --timeout 1000 / 0.0001 / abc / 0', "exit 2 with one line naming the range; nothing stopped (was: exit 1 with zod's text)", 4, true);
  });

  it('13c: logs -f of a member that is removed ends with a line saying so, and never follows its successor', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 'f', ...P])).code).toBe(0);
    const follow = start(store, ['logs', '-f', 'f-1']);
    expect(await eventually(() => follow.out.stdout.includes('f-1 listening'), 10_000), follow.out.stderr).toBe(true);
    expect((await cli(store, ['rm', 'f-1', '--yes'])).code).toBe(0);
    // Made again at once under the same name: its output belongs to a member the follower never named.
    const again = await cli(store, ['up', 'f-1', ...P, '--cmd', `echo second-life; exec perl '${MEMBER_SERVER}'`]);
    expect(again.code, again.stderr).toBe(0);
    const ended = await follow.exited(10_000);
    if (!ended) follow.child.kill('SIGTERM');
    report.add('logs -f while the member is rm-ed and made again', 'the follower ended with "was removed", exit 0 (was: followed for ever, then the new member)', 1, ended?.code === 0);
    expect(ended, 'logs -f kept following a removed member').not.toBeNull();
    expect(ended?.code).toBe(0);
    expect(ended?.stderr).toBe('f-1 was removed; stopped following its log\n');
    expect(ended?.stdout).not.toContain('second-life');
  });

  it('13d: up refuses members a cluster has no address for before writing anything', async () => {
    store = tempStore();
    // What `up x -n 254` of the process backend left: 254 stopped members, every loopback address given out.
    fakeStoppedMembers(store, 'x', 254);
    const addresses = Object.fromEntries(Array.from({ length: 254 }, (_, i) => [`x-${i + 1}`, `127.99.7.${i + 1}`]));
    writeNetworkRecord(store, { cluster: 'x', kind: 'loopback', subnet: '127.99.7', prefix: 8, gateway: null, namespace: null, addresses, owner: null, createdAt: new Date().toISOString() });
    const more = await cli(store, ['up', 'x-255', ...P]);
    expect(more.code, more.stderr).toBe(2);
    expect(more.stderr).toMatch(/^fleetbox: cluster x has addresses for at most 253 members; 254 are taken, so 1 more does not fit/);
    expect(more.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(store.memberDir('x', 'x-255')), 'x-255 was written').toBe(false);
    expect(listMembers(store, 'x')).toHaveLength(254);
    // The rule counts addresses, not members: one that has its address still comes back.
    const rejoin = await cli(store, ['up', 'x-7', ...P]);
    expect(rejoin.code, rejoin.stderr).toBe(0);
    for (const args of [['up', 'y', '-n', '254', ...P], ['up', 'y', '-n', '255', ...P]]) {
      const refused = await cli(store, args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toMatch(/^fleetbox: -n must be a whole number from 1 to 253/);
      expect(existsSync(store.clusterDir('y')), 'cluster y was written').toBe(false);
    }
    report.add('up x-255 onto a full /24; up y -n 254 / 255', 'exit 2 before anything is written (was: an error member "no free address" left behind)', 3, true);
  });

  it('13d: a failed boot shows the member\'s last output in status, not an empty "last output:"', async () => {
    store = tempStore();
    const up = await cli(store, ['up', 'e', ...P, '--cmd', 'echo first-line; echo boom-line; exit 3', '--timeout', '5']);
    expect(up.code).toBe(1);
    const fleet = await cli(store, ['status']);
    expect(fleet.stdout).toMatch(/e-1: failed: e-1 .*last output: first-line \| boom-line/);
    const one = await cli(store, ['status', 'e-1']);
    expect(one.stdout).toMatch(/ {2}error {6}.*last output:\n {13}first-line\n {13}boom-line\n/);
    const json = JSON.parse((await cli(store, ['status', '--json'])).stdout) as { members: { problem: string | null }[] };
    expect(json.members[0]?.problem).toMatch(/last output: first-line \| boom-line$/);
    report.add('status of a member whose boot failed with output', 'the issue, the member view and --json (the dashboard) carry the output lines', 1, true);
  });

  it('14: down x racing up x-4, 30 rounds: every up succeeds or fails with a clear message, never "did not answer; retry"', async () => {
    store = tempStore();
    const s = store;
    const outcomes: string[] = [];
    for (let round = 0; round < 30; round++) {
      const base = await cli(s, ['up', 'x', '-n', '3', ...P]);
      expect(base.code, `round ${round}: ${base.stderr}`).toBe(0);
      const [down, up] = await Promise.all([cli(s, ['down', 'x']), cli(s, ['up', 'x-4', ...P])]);
      expect(down.code, `round ${round} down: ${down.stderr}`).toBe(0);
      outcomes.push(up.code === 0 ? 'ok' : up.stderr.trim());
      expect(up.stderr, `round ${round}`).not.toMatch(/did not answer; retry/);
      if (up.code !== 0) {
        expect(up.stderr, `round ${round}`).toMatch(/^fleetbox: \S/);
        expect(up.stderr, `round ${round}`).not.toMatch(/\n\s+at /);
      }
      // Back to three stopped members: x-4 goes, and its holder with it (down waits for that).
      if (existsSync(s.configPath('x', 'x-4'))) {
        expect((await cli(s, ['down', 'x-4'])).code).toBe(0);
        expect((await cli(s, ['rm', 'x-4', '--yes'])).code).toBe(0);
      }
      expect(processesOf(s), `round ${round}: a process outlived down`).toEqual([]);
    }
    const ok = outcomes.filter((o) => o === 'ok').length;
    report.figure('down x racing up x-4: ups that succeeded', `${ok} of 30`);
    report.add('down x racing up x-4 (process backend)', `30 rounds: ${ok} up ok, ${30 - ok} failed with a clear message, 0 "did not answer" (was: ~11 of 30)`, 30, true);
  }, 600_000);
});
