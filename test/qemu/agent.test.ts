import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, type Member } from '../../dist/index.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, alive, destroyStore } from '../helpers.js';
import { scratch } from '../scratch.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

const run = promisify(execFile);
const skip = reportSkip('guest agent on a real VM', cannotBootVms());
let store: Store;
let member: Member;
let second: Member;

/** A short poll period, so "red within two poll periods" is seconds, not minutes, here. */
const POLL_MS = 500;

function cli(args: string[]) {
  const env = { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: String(POLL_MS) };
  return run(CLI, args, { env, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

interface Row {
  status: string;
  health: string;
  checks: { name: string; status: string; detail: string }[];
  action: string | null;
}

async function row(name = 'agq-1'): Promise<Row & { state: string; holderPid: number | null }> {
  const r = await cli(['status', name, '--json']);
  return JSON.parse(r.stdout) as Row & { state: string; holderPid: number | null };
}

// One VM for the whole file; the tests run in order and the last ones break the guest on purpose.
describe.skipIf(skip)('the guest agent on a real VM', () => {
  beforeAll(async () => {
    store = new Store(vmStore().home).ensure();
    const up = await cli(['up', 'agq', '-n', '2']);
    expect(up.code, up.stderr).toBe(0);
    const [first, other] = (await attach('agq', { home: store.home })).members;
    member = first as Member;
    second = other as Member;
  }, 300_000);

  afterAll(async () => {
    if (store) await destroyStore(store);
  });

  it('exec answers with the network down, and the exit code, stdout and stderr come back apart', async () => {
    const down = await member.exec('ip link set eth0 down && cat /sys/class/net/eth0/operstate');
    expect(down).toEqual({ stdout: 'down\n', stderr: '', exitCode: 0 });
    // No route to anything, and still answering: the agent needs no network.
    expect(await member.exec('ping -c1 -W1 10.0.0.1 >/dev/null 2>&1; echo $?; echo oops >&2; exit 7')).toEqual({ stdout: '1\n', stderr: 'oops\n', exitCode: 7 });
    expect((await cli(['ssh', 'agq-1', '--', 'hostname'])).stdout).toBe('agq-1\n');
    await member.exec('ip link set eth0 up');
  }, 60_000);

  it('a timeout kills the command and everything it started inside the guest', async () => {
    const t0 = Date.now();
    await expect(member.exec('sleep 300 & sleep 301', { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'exec_timeout' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expect.poll(async () => (await member.exec('ps | grep -c "[s]leep 30[01]" || true')).stdout, { timeout: 5_000 }).toBe('0\n');
  }, 60_000);

  it('commands run on the exec ports, side by side; with every port busy the next goes through the agent, and both ways a command starts alike', async () => {
    // The command's parent says which way it came: an exec port's server, or qemu-ga. Then what a command
    // starts with: folder, environment, ignored signals (SIGINT must not be, either way).
    const probe = 'head -c 40 /proc/$PPID/cmdline | tr "\\0\\n" "  "; echo; echo "$PWD"; env | sort | tr "\\n" " "; echo; grep SigIgn /proc/self/status';
    const onPort = await member.exec(probe);
    const [parent, cwd, env, ignored] = onPort.stdout.split('\n');
    expect(parent).toMatch(/^\/bin\/fleetbox-exec \/dev\/vport/);
    expect(cwd).toBe('/root');
    expect(env?.trim().split(' ').filter((kv) => !/^(PWD|OLDPWD|SHLVL)=/.test(kv))).toEqual(['HOME=/root', 'LOGNAME=root', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'SHELL=/bin/sh', 'USER=root']);
    // Four ports: four slow commands hold them all; a fifth goes to the agent and answers first.
    const slow = Array.from({ length: 4 }, () => member.exec(`sleep 5; ${probe}`, { timeoutMs: 60_000 }));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const viaAgent = (await member.exec(probe)).stdout.split('\n');
    // The agent's own timeout ends what it started too.
    await expect(member.exec('sleep 300 & sleep 301', { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'exec_timeout' });
    const held = await Promise.all(slow);
    await expect.poll(async () => (await member.exec('ps | grep -c "[s]leep 30[01]" || true')).stdout, { timeout: 5_000 }).toBe('0\n');
    expect(viaAgent[0]).toMatch(/qemu-ga/);
    expect(viaAgent.slice(1, 3)).toEqual([cwd, env]);
    expect(viaAgent.slice(4)).toEqual(['']);
    // Each on a port of its own: four servers, four devices.
    const servedBy = held.map((r) => r.stdout.split('\n')[0] ?? '');
    for (const server of servedBy) expect(server).toMatch(/^\/bin\/fleetbox-exec \/dev\/vport\S+ /);
    expect(new Set(servedBy.map((server) => server.split(' ')[1])).size).toBe(4);
    // SIGINT reaches a command either way (a server started with '&' would pass it on ignored).
    // SIGQUIT too on a port; through 'sh -c' busybox leaves it ignored for the program it
    // execs in its place (the last), as it ignores it itself (image/guest-init.ts EXEC_REQUEST).
    const sigIgn = (line?: string) => BigInt(`0x${line?.split(/\s+/)[1]}`);
    expect(sigIgn(ignored) & 0x6n).toBe(0n);
    expect(sigIgn(ignored) | 0x4n).toBe(sigIgn(viaAgent[3]) | 0x4n);
  }, 60_000);

  it('large input and output: 2 MiB through stdin, 12 MiB back out, byte for byte', async () => {
    const input = Buffer.alloc(2 << 20, 'abcdefgh');
    expect((await member.exec('md5sum | cut -c1-32', { input })).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
    const sum = (await member.exec('wc -c', { input })).stdout.trim();
    expect(sum).toBe(String(2 << 20));
    const out = await member.exec('head -c 12582912 /dev/zero | tr "\\0" x');
    expect(out.stdout.length).toBe(12 << 20);
    expect(out.exitCode).toBe(0);
  }, 120_000);

  it('a flood of 1,000 concurrent execs: each answers or is refused with busy, and the holder keeps serving', async () => {
    const results = await Promise.allSettled(Array.from({ length: 1_000 }, (_, i) => member.exec(`echo ${i}`, { timeoutMs: 120_000 })));
    let answered = 0;
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') {
        expect(r.value.stdout).toBe(`${i}\n`);
        answered++;
      } else {
        expect((r.reason as { code?: string }).code).toBe('busy');
      }
    }
    expect(answered).toBeGreaterThan(0);
    expect((await member.exec('echo after')).stdout).toBe('after\n');
  }, 300_000);

  it('a guest that powers off mid-exec: the exec fails at once as unreachable, the holder keeps serving the others', async () => {
    const pending = second.exec('sleep 60', { timeoutMs: 120_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await second.exec('(sleep 0.3; poweroff -f) >/dev/null 2>&1 &');
    const t0 = Date.now();
    await expect(pending).rejects.toMatchObject({ code: 'unreachable' });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect((await member.exec('echo alive')).stdout).toBe('alive\n');
    await expect.poll(async () => (await row('agq-2')).state, { timeout: 10_000 }).toBe('error');
  }, 60_000);

  it('the holder killed mid-copy: the copy fails, nothing of it appears on the host, and the member comes back with up', async () => {
    expect((await member.exec('head -c 25165824 /dev/urandom > /tmp/big && echo ok')).stdout).toBe('ok\n');
    const holder = (await row()).holderPid ?? 0;
    expect(holder).toBeGreaterThan(0);
    const dir = scratch();
    const copying = member.copyFrom('/tmp/big', join(dir, 'big'), { timeoutMs: 120_000 });
    // Kill once the copy is under way: its staging directory exists on the host.
    await expect.poll(() => readdirSync(dir).length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
    process.kill(holder, 'SIGKILL');
    await expect(copying).rejects.toMatchObject({ code: expect.stringMatching(/^(unreachable|unresponsive|not_running)$/) });
    expect(existsSync(join(dir, 'big'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    await expect.poll(() => alive([holder]).length, { timeout: 5_000 }).toBe(0);
    const up = await cli(['up', 'agq-1']);
    expect(up.code, up.stderr).toBe(0);
    member = (await attach('agq', { home: store.home })).members.find((m) => m.name === 'agq-1') as Member;
    expect((await member.exec('hostname')).stdout).toBe('agq-1\n');
  }, 180_000);

  it('health looks inside: sshd killed → amber, saying so; agent killed → red with a next action; exec still answers on its ports', async () => {
    await expect
      .poll(async () => (await row()).checks.map((c) => [c.name, c.status]), { timeout: 15_000, interval: 300 })
      .toEqual(expect.arrayContaining([['agent', 'pass'], ['ssh', 'pass']]));
    expect((await row()).status).toBe('green');

    await member.exec('kill $(cat /run/dropbear.pid)');
    await expect.poll(async () => (await row()).status, { timeout: 4 * POLL_MS + 5_000, interval: 200 }).toBe('amber');
    const amber = await row();
    expect(amber.checks.find((c) => c.name === 'ssh')).toMatchObject({ status: 'warn', detail: expect.stringContaining('nothing listens on port 22') });
    // exec does not need sshd
    expect((await member.exec('echo still')).stdout).toBe('still\n');

    // The agent's own exec cannot report its killer's end: do it in the background.
    await member.exec('(sleep 0.3; kill -9 $(cat /run/qemu-ga.pid)) >/dev/null 2>&1 &');
    // Red within two poll periods once the member is past its start-up grace (15 s; this member was
    // started again by the previous test, so part of the wait may be that grace).
    await expect.poll(async () => (await row()).status, { timeout: 20_000, interval: 200 }).toBe('red');
    const red = await row();
    expect(red.checks.find((c) => c.name === 'agent')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/does not answer|did not finish within/) });
    expect(red.action).toBeTruthy();
    // The exec ports do not need the agent.
    expect((await member.exec('echo without agent', { timeoutMs: 5_000 })).stdout).toBe('without agent\n');
    // Killing the exec servers too leaves no way in: the command fails at its timeout, never hangs.
    // (The pattern is put together at run time: the killer's own command line must not match it.)
    const killServers = 'l="fleetbox-exec /dev/"; l="${l}vport"; for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline 2>/dev/null)" in *"$l"*) kill -9 ${p#/proc/} ;; esac; done';
    await member.exec(`(sleep 0.3; ${killServers}) >/dev/null 2>&1 &`);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await expect(member.exec('true', { timeoutMs: 3_000 })).rejects.toMatchObject({ code: expect.stringMatching(/^(unresponsive|unreachable|exec_timeout)$/) });
  }, 120_000);
});
