import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startCluster } from '../../dist/index.js';
import type { MemberView } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { readMemberState } from '../../dist/store/members.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { destroyStore, eventually, tempStore } from '../helpers.js';
import { cli } from './harness.js';
import { assertNoLeftovers } from './leftovers.js';
import { PartReport } from './report.js';

const report = new PartReport('7', 'Hardening: the lies and leaks a hostile tester found, each replayed');
const P = ['--backend', 'process'];
let store: Store | undefined;
const paused: number[] = [];

afterEach(async () => {
  // A test that failed half-way must not leave a stopped holder behind.
  for (const pid of paused.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGCONT');
  if (store) await destroyStore(store);
  store = undefined;
});
afterAll(() => report.flush());

function holderOf(s: Store, cluster: string, member: string): number {
  const pid = liveHolder(s.pidfilePath(cluster, member))?.pid;
  if (pid === undefined) throw new Error(`${member} has no live holder`);
  return pid;
}

function pause(pid: number): void {
  process.kill(pid, 'SIGSTOP');
  paused.push(pid);
}

/** One raw request on a member socket; resolves with the first reply line. */
function raw(path: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(JSON.parse(text.split('\n')[0] || '{}')));
    socket.once('connect', () => socket.end(JSON.stringify(body) + '\n'));
  });
}

describe('lies and leaks', () => {
  it('a failed adopt leaves the holder as it was: it still exits with its last member and rm --all leaves nothing', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 'f', '-n', '2', ...P])).code).toBe(0);
    const holder = holderOf(store, 'f', 'f-2');
    expect((await cli(store, ['down', 'f-1'])).code).toBe(0);
    // Something that is not a socket sits where f-1's socket goes: the re-join must fail...
    writeFileSync(store.memberSocketPath('f-1'), 'not a socket');
    const rejoin = await cli(store, ['up', 'f-1']);
    expect(rejoin.code).not.toBe(0);
    expect(rejoin.stderr).toMatch(/not a socket/);
    rmSync(store.memberSocketPath('f-1'));
    // ...and leave nothing half-adopted: f-1 reads stopped, and once f-2 goes the holder exits.
    const ls = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(ls.map((v) => [v.name, v.state])).toEqual([['f-1', 'stopped'], ['f-2', 'running']]);
    const rm = await cli(store, ['rm', '--all', '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    const gone = await eventually(() => !isProcessAlive(holder), 5_000);
    report.add('re-join onto a socket path taken by a plain file, then rm --all', 'the failed adopt left nothing; the holder exited with its last member', 1, gone);
    expect(gone, 'the holder outlived its last member').toBe(true);
    await assertNoLeftovers(store);
  });

  it('down of a member whose holder is stopped (SIGSTOP) fails at once with unresponsive; nothing it asked runs after SIGCONT', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 's', '-n', '2', ...P])).code).toBe(0);
    const holder = holderOf(store, 's', 's-1');
    pause(holder);
    const started = Date.now();
    const down = await cli(store, ['down', 's-2']);
    const ms = Date.now() - started;
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`holder of s-2 \\(pid ${holder}\\) is alive but not answering.*kill -CONT ${holder}`));
    const ls = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(ls.map((v) => [v.name, v.unresponsive])).toEqual([['s-1', true], ['s-2', true]]);
    // Resumed, the holder finds the requests it queued while stopped expired: s-2 keeps running.
    process.kill(holder, 'SIGCONT');
    const after = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(after.map((v) => [v.name, v.state, v.source])).toEqual([['s-1', 'running', 'holder'], ['s-2', 'running', 'holder']]);
    report.add('down against a SIGSTOPped holder', `exit 1 with 'unresponsive' in ${ms} ms (was: exit 0 "running" after 42 s); nothing ran on SIGCONT`, 1, true);
  });

  it('a request that reaches the holder after its expiresAt is refused, not run', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 'e', ...P])).code).toBe(0);
    const reply = await raw(store.memberSocketPath('e-1'), { cmd: 'stop', expiresAt: Date.now() - 1 });
    expect(reply).toMatchObject({ ok: false, error: { code: 'busy', message: expect.stringMatching(/after its deadline/) } });
    const ls = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(ls.map((v) => v.state)).toEqual(['running']);
    report.add('stop whose expiresAt has passed', 'refused with busy; the member kept running', 1, true);
  });

  it('rm of a member whose holder is stopped ends its processes (and the holder) before deleting', async () => {
    store = tempStore();
    expect((await cli(store, ['up', 'r', '-n', '3', ...P])).code).toBe(0);
    const holder = holderOf(store, 'r', 'r-3');
    const member = readMemberState(store, 'r', 'r-3')?.pid as number;
    expect(isProcessAlive(member)).toBe(true);
    pause(holder);
    const rm = await cli(store, ['rm', 'r-3', '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).toContain(`holder ${holder} of r-3 was alive but did not answer; its processes were ended`);
    expect(isProcessAlive(member), 'r-3 outlived its rm').toBe(false);
    expect(isProcessAlive(holder), 'the silent holder outlived rm').toBe(false);
    // The holder's other members were reconciled as orphans: stopped, no process of theirs left.
    const ls = JSON.parse((await cli(store, ['ls', '--json'])).stdout) as MemberView[];
    expect(ls.map((v) => [v.name, v.state])).toEqual([['r-1', 'stopped'], ['r-2', 'stopped']]);
    report.add('rm against a SIGSTOPped holder', 'the member and the holder ended by recorded PID + start time, then deleted', 1, true);
    expect((await cli(store, ['rm', '--all', '--yes'])).code).toBe(0);
    await assertNoLeftovers(store);
  });

  it('a bound cluster has one owner: four startCluster of one name at once give one cluster and three busy', async () => {
    store = tempStore();
    const home = store.home;
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => startCluster({ name: 'par', members: 2, backend: 'process', home })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won.length).toBe(1);
    expect(lost.map((r) => (r.reason as { code?: string }).code)).toEqual(['busy', 'busy', 'busy']);
    const cluster = won[0]?.value;
    if (!cluster) throw new Error('no cluster won');
    // Later callers are refused too, even though every member they ask for already runs.
    await expect(startCluster({ name: 'par', members: 2, backend: 'process', home })).rejects.toMatchObject({ code: 'busy' });
    // A new member joins the owner's cluster (its directory did not exist before).
    const third = await cluster.add('par-3');
    expect([third.name, third.state]).toEqual(['par-3', 'running']);
    expect(cluster.members.map((m) => m.name)).toEqual(['par-1', 'par-2', 'par-3']);
    report.add('4 concurrent startCluster of one bound cluster, then a 5th', 'one owner, four busy; cluster.add of a new member works', 1, true);
    await cluster.destroy();
    await assertNoLeftovers(store);
  });

  it('a process that leaves its group with setsid still ends with its member: on down, and on reconcile after kill -9 of the holder', async () => {
    store = tempStore();
    const s = store;
    // The member starts a session leader of its own, then serves; the grandchild's PID goes to a file.
    const cmd = `setsid sleep 1000 & echo $! > "$FLEETBOX_HOME/$FLEETBOX_NAME.escapee"; exec ${process.execPath} -e "require('net').createServer().listen(+process.env.FLEETBOX_PORT, process.env.FLEETBOX_IP)"`;
    expect((await cli(s, ['up', 'g', '-n', '2', ...P, '--cmd', cmd])).code).toBe(0);
    const escapee = (name: string) => Number(readFileSync(`${s.home}/${name}.escapee`, 'utf8'));
    const [first, second] = [escapee('g-1'), escapee('g-2')];
    expect([isProcessAlive(first), isProcessAlive(second)]).toEqual([true, true]);
    expect((await cli(s, ['down', 'g-1'])).code).toBe(0);
    expect(isProcessAlive(first), 'the setsid grandchild outlived down').toBe(false);
    process.kill(holderOf(s, 'g', 'g-2'), 'SIGKILL');
    // The holder's death takes the member's direct child (pdeathsig); reconcile (ls) the rest.
    expect((await cli(s, ['ls'])).code).toBe(0);
    expect(await eventually(() => !isProcessAlive(second), 3_000), 'the setsid grandchild outlived its dead holder').toBe(true);
    report.add('a --cmd that runs setsid; down; kill -9 of the holder', 'the escaped grandchild ended with its member both times (cgroup.kill)', 2, true);
    expect((await cli(s, ['rm', '--all', '--yes'])).code).toBe(0);
    await assertNoLeftovers(s);
  });

  it('readiness is this member answering, not any listener on its port', async () => {
    store = tempStore();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    // A stray server on the wildcard address takes the port the members want.
    const stray = createServer().listen(port, '0.0.0.0');
    await once(stray, 'listening');
    try {
      const up = await cli(store, ['up', 'p', '-n', '2', ...P, '--port', String(port)]);
      expect(up.code, up.stdout).not.toBe(0);
      expect(up.stderr).toMatch(/EADDRINUSE|exited during boot/);
      report.add('up with another server already on the members\' port', 'up fails with the members\' own error instead of saying running', 1, up.code !== 0);
    } finally {
      stray.close();
    }
  });

  it('two stores never share a loopback subnet, even with cluster names chosen to collide', async () => {
    store = tempStore();
    const other = tempStore();
    try {
      expect((await cli(store, ['up', 'c', ...P])).code).toBe(0);
      const taken = (JSON.parse(readFileSync(store.networkPath('c'), 'utf8')) as { subnet: string }).subnet;
      // The name whose first candidate subnet in the other store is exactly that one.
      const slot = (text: string) => createHash('sha256').update(text).digest().readUInt32BE(0) % 51_200;
      const subnetOf = (n: number) => `127.${16 + Math.floor(n / 256)}.${n % 256}`;
      const offset = slot(other.home);
      let name = '';
      for (let i = 0; !name; i++) if (subnetOf((slot(`k${i}x`) + offset) % 51_200) === taken) name = `k${i}x`;
      const up = await cli(other, ['up', name, ...P]);
      expect(up.code, up.stderr).toBe(0);
      const theirs = (JSON.parse(readFileSync(other.networkPath(name), 'utf8')) as { subnet: string }).subnet;
      report.add('a cluster name chosen so that a second store would pick the first one\'s subnet', 'the second store got another /24', 1, theirs !== taken);
      expect(theirs).not.toBe(taken);
    } finally {
      await destroyStore(other);
    }
  });

  it('symlinks in the store are never followed: rm of a linked cluster, a linked serial.log, a linked holder log', async () => {
    store = tempStore();
    const s = store;
    const outside = mkdtempSync('/tmp/fbx-outside-');
    try {
      // rm o-1 through a symlinked clusters/o must not delete outside/o-1.
      mkdirSync(join(outside, 'o-1'));
      writeFileSync(join(outside, 'o-1', 'config.json'), '{}');
      writeFileSync(join(outside, 'o-1', 'precious'), 'keep me');
      symlinkSync(outside, s.clusterDir('o'));
      const rm = await cli(s, ['rm', 'o-1', '--yes']);
      expect(readFileSync(join(outside, 'o-1', 'precious'), 'utf8')).toBe('keep me');
      rmSync(s.clusterDir('o'));
      // A member's serial.log and the holder log planted as links: refused, the targets untouched.
      writeFileSync(join(outside, 'target'), 'untouched');
      expect((await cli(s, ['up', 'l', ...P])).code).toBe(0);
      expect((await cli(s, ['down', 'l-1'])).code).toBe(0);
      rmSync(s.serialLogPath('l', 'l-1'));
      symlinkSync(join(outside, 'target'), s.serialLogPath('l', 'l-1'));
      const up = await cli(s, ['up', 'l-1']);
      expect(up.code).not.toBe(0);
      expect(up.stderr).toMatch(/serial\.log is a symbolic link; fleetbox does not follow links in its store/);
      rmSync(s.serialLogPath('l', 'l-1'));
      rmSync(s.holderLogPath('l'), { force: true });
      symlinkSync(join(outside, 'target'), s.holderLogPath('l'));
      const again = await cli(s, ['up', 'l-1']);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toMatch(/holder-l\.log is a symbolic link/);
      expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
      report.add('rm through a symlinked cluster dir; serial.log and holder log planted as links', 'nothing outside the store deleted or appended to; one line naming the link', 3, rm.code !== null);
      rmSync(s.holderLogPath('l'));
      expect((await cli(s, ['rm', '--all', '--yes'])).code).toBe(0);
      await assertNoLeftovers(s);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('a wedged store fails fast and names the cause: a corrupt config, a read-only home, a home too long, a home of another user', async () => {
    store = tempStore();
    const s = store;
    expect((await cli(s, ['up', 'w', '-n', '2', ...P])).code).toBe(0);
    expect((await cli(s, ['up', 'v', ...P])).code).toBe(0);
    // One corrupt config.json: ls still lists everyone, status too, and rm --all clears it.
    expect((await cli(s, ['down', 'w-2'])).code).toBe(0);
    writeFileSync(s.configPath('w', 'w-2'), '{bad');
    const ls = await cli(s, ['ls', '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const views = JSON.parse(ls.stdout) as MemberView[];
    expect(views.map((v) => [v.name, v.state])).toEqual([['v-1', 'running'], ['w-1', 'running'], ['w-2', 'error']]);
    expect(views[2]?.error).toMatch(/config\.json is not valid JSON.*'fleetbox rm w-2 --yes' removes the member/);
    expect((await cli(s, ['status'])).code).not.toBe(2);
    const rm = await cli(s, ['rm', '--all', '--yes']);
    expect(rm.code, rm.stderr).toBe(0);
    await assertNoLeftovers(s);
    report.add('one corrupt config.json among three members', 'ls and status list the others; rm --all clears it', 1, true);

    // A read-only home: one line naming EROFS at once, not "locked by another command" after 31 s.
    expect((await cli(s, ['up', 'z', ...P])).code).toBe(0);
    expect((await cli(s, ['down', 'z'])).code).toBe(0);
    let readOnly = true;
    try {
      execFileSync('mount', ['--bind', '-o', 'ro', s.home, s.home], { stdio: 'ignore' });
    } catch {
      readOnly = false;
      console.log('hardening: read-only home case not run: this machine cannot bind-mount (not root)');
    }
    if (readOnly) {
      try {
        for (const args of [['up', 'w', ...P], ['rm', '--all', '--yes']]) {
          const r = await cli(s, args);
          expect(r.code, args.join(' ')).toBe(1);
          expect(r.stderr).toMatch(/is not writable \(EROFS\)/);
        }
        report.add('up and rm on a read-only home', 'one line naming EROFS, no lock wait', 2, true);
      } finally {
        execFileSync('umount', [s.home]);
      }
    }
    expect((await cli(s, ['rm', '--all', '--yes'])).code).toBe(0);

    // A home whose socket paths would be too long: refused before anything is written.
    const long = `${s.home}/${'l'.repeat(90)}`;
    const tooLong = await cli(s, ['up', 'x', ...P], { FLEETBOX_HOME: long });
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/over the 107-byte limit of unix sockets: set FLEETBOX_HOME to a shorter directory/);
    expect(existsSync(long)).toBe(false);

    // A home another user owns: its config.json would run as us.
    const foreign = mkdtempSync('/tmp/fbx-foreign-');
    try {
      chownSync(foreign, 65534, 65534);
      const r = await cli(s, ['ls'], { FLEETBOX_HOME: foreign });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/belongs to uid 65534, not to you .*set FLEETBOX_HOME to a folder of your own/);
      report.add('a home too long; a home owned by another user', 'refused with one line before anything is written or run', 2, true);
    } finally {
      rmSync(foreign, { recursive: true, force: true });
    }
  });
});
