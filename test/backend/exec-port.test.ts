import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExecPorts } from '../../dist/backend/qemu/exec-port.js';
import { PortStream } from '../../dist/backend/qemu/port-stream.js';
import { buildExecServer } from '../../dist/image/exec-server.js';
import { EXEC_OUTPUT_CAP, EXEC_REQUEST, GUEST_ENV } from '../../dist/image/guest-init.js';
import { scratch } from '../scratch.js';

/*
 * The holder's end of the exec ports against the guest's real server (image/exec-server.c),
 * built as the image build builds it and run on the host with one end of a socket pair as its
 * port; commands run under the host's busybox (the guest image's busybox is the same Debian
 * package) or the host's /bin/sh (dash, as in a Debian userland guest). What only a real guest
 * shows (the virtio port) is tested on real VMs in test/qemu/agent.test.ts.
 */

const run = promisify(execFile);
const busybox = ['/usr/bin/busybox', '/bin/busybox'].find((path) => existsSync(path));
/** strace holds the server at a chosen system call (.ci/run installs it). */
const strace = ['/usr/bin/strace', '/bin/strace'].find((path) => existsSync(path));
if (!strace) console.warn('exec-port.test.ts: no strace here (apt-get install strace): the test of a kill between PID and hand-over is skipped');
/** The environment the init gives a server, as an object. */
const guestEnv = Object.fromEntries(GUEST_ENV.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

let serverProgram = '';
beforeAll(async () => {
  serverProgram = join(scratch(), 'fleetbox-exec');
  // Warnings are errors here, not in users' image builds (another gcc may warn more).
  await buildExecServer(serverProgram, { warningsAreErrors: true });
}, 60_000);

const running: ChildProcess[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const child of running.splice(0)) {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const server of servers.splice(0)) server.close();
});

/**
 * A server on fd 3 of its own, in its own scratch directory; its environment as the init gives
 * it. `shell` is the busybox that runs commands, started ahead (a guest whose /bin/sh is
 * busybox), or '' for a child that execs /bin/sh (the host's: dash, as in a Debian userland guest).
 */
function startLocal(shell: string, wrapper: readonly string[] = []): { connect: () => Promise<PortStream>; server: ChildProcess; dir: string } {
  const dir = scratch();
  // In a process group of its own, so that the shells it starts go with it.
  const command = [...wrapper, serverProgram, '-', dir, shell, EXEC_REQUEST];
  const started = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: guestEnv, cwd: dir, detached: true });
  running.push(started);
  const socket = started.stdio[3] as Socket;
  return { connect: () => Promise.resolve(PortStream.over(socket)), server: started, dir };
}

/** Runs the holder's kill script on the host, as the agent does in the guest. */
const killChildren = async (script: string) => {
  await run('sh', ['-c', script]);
};
const noKill = () => Promise.resolve();

const quick = { helloMs: 2_000, outputMs: 2_000 };

/** The host's busybox as `sh` (it runs as the applet its name says), as a guest's /bin/sh is. */
let busyboxShPath: string | undefined;
function busyboxSh(): string {
  if (!busyboxShPath) {
    busyboxShPath = join(scratch(), 'sh');
    symlinkSync(busybox as string, busyboxShPath);
  }
  return busyboxShPath;
}

const shells = [
  ['a busybox shell started ahead', 'busybox-sh'],
  ['a subshell that execs /bin/sh', ''],
] as const;

describe.skipIf(!busybox).each(shells)('exec ports (the guest\'s server on the host): commands run by %s', (_, shell) => {
  const startServer = () => startLocal(shell && busyboxSh());
  it('exit codes, stdout and stderr apart, bytes exact, stdin, and the environment a command gets over SSH', async () => {
    const { connect } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    const plain = await ports.run('echo out; echo err >&2; exit 3', { timeoutMs: 5_000 }, noKill);
    expect(plain).toMatchObject({ exitCode: 3, truncated: false });
    expect(plain?.stdout.toString()).toBe('out\n');
    expect(plain?.stderr.toString()).toBe('err\n');
    const binary = await ports.run("printf '\\000\\377\\nZ 1\\n'", { timeoutMs: 5_000 }, noKill);
    expect([...(binary?.stdout ?? [])]).toEqual([0, 255, 10, 90, 32, 49, 10]);
    const input = Buffer.from([...Array(300_000).keys()].map((i) => i % 251));
    const echoed = await ports.run('cat', { timeoutMs: 5_000, input }, noKill);
    expect(echoed?.stdout.equals(input)).toBe(true);
    const multiLine = await ports.run('x=1\nif [ $x = 1 ]; then\n  echo "two\n lines"\nfi', { timeoutMs: 5_000 }, noKill);
    expect(multiLine?.stdout.toString()).toBe('two\n lines\n');
    const env = await ports.run('env | sort; echo "$0"', { timeoutMs: 5_000 }, noKill);
    // Exactly the environment the init gives the server, plus what the shell itself sets.
    const lines = env?.stdout.toString().trim().split('\n') ?? [];
    expect(lines.pop()).toBe('/bin/sh');
    // SHLVL is the command's shell's own: busybox counts 1; the host's /bin/sh, dash, sets none.
    // None comes from the server.
    expect(lines.filter((kv) => kv.startsWith('SHLVL='))).toEqual(shell ? ['SHLVL=1'] : []);
    expect(lines.filter((kv) => !/^(PWD|OLDPWD|_|SHLVL)=/.test(kv))).toEqual([...GUEST_ENV].sort());
    // Nothing of the request reader's own shows: no variables, no arguments.
    const own = await ports.run('echo "[$# $i$c]"', { timeoutMs: 5_000 }, noKill);
    expect(own?.stdout.toString()).toBe('[0 ]\n');
    // The port's fd is not the command's.
    const fds = await ports.run('[ -e /proc/self/fd/3 ] && echo open || echo closed', { timeoutMs: 5_000 }, noKill);
    expect(fds?.stdout.toString()).toBe('closed\n');
    // $$ is the command's shell.
    const signalled = await ports.run('kill -9 $$', { timeoutMs: 5_000 }, noKill);
    expect(signalled?.exitCode).toBe(137);
    expect((await ports.run('echo alive', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('alive\n');
  });

  it('a command runs as under sh -c of the same shell: line numbers, arguments, return, exit, traps, here-documents', async () => {
    const { connect, server } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    // The shell a port runs commands with, run here directly with -c (as /bin/sh, as in a guest).
    const direct = async (command: string) => {
      const done = await run(shell ? busyboxSh() : '/bin/sh', ['-c', command, '/bin/sh'], { env: guestEnv }).catch((error: { stdout: string; code: number }) => error);
      return { stdout: done.stdout, exitCode: 'code' in done ? done.code : 0 };
    };
    const commands = [
      'echo $LINENO; f() { echo $LINENO; }; f\necho $LINENO',
      'echo "$0 $#"; set -- a b; echo $#',
      'return 3; echo after',
      'exit 4',
      'set -e; false; echo not reached',
      'trap "echo bye" EXIT; echo hi',
      'cat <<EOF\nhere $((1 + 2))\nEOF',
      'echo one \\\n two # a comment',
      'for i in 1 2; do continue; done; echo "$i"',
    ];
    for (const command of commands) {
      const onPort = await ports.run(command, { timeoutMs: 5_000 }, noKill);
      expect({ command, stdout: onPort?.stdout.toString(), exitCode: onPort?.exitCode }).toEqual({ command, ...(await direct(command)) });
    }
    // Its shell is the server's child.
    expect((await ports.run('echo $PPID', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe(`${server.pid}\n`);
    // A last program that a signal ends: the shell that forked it says so on stderr. (Busybox's
    // 'sh -c' would have exec'd it in its own place and said nothing: a documented difference;
    // the host's dash forks it, as here.)
    const killed = await ports.run("sh -c 'kill -9 $$'", { timeoutMs: 5_000 }, noKill);
    expect({ exitCode: killed?.exitCode, stderr: killed?.stderr.toString() }).toEqual({ exitCode: 137, stderr: 'Killed\n' });
  });

  it('output comes back byte for byte: text, multi-byte, NUL, small and large', async () => {
    const { connect } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    const texts = ['a\n\n\n', ' lead and trail \\ back\\slash \n', 'é ü 日本\n', 'nul\0inside\n', '\n'];
    const octal = (text: string) => [...Buffer.from(text)].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
    const cases: [string, Buffer][] = [
      ...texts.map((text): [string, Buffer] => [`printf '${octal(text)}'`, Buffer.from(text)]),
      ...[255, 256, 65_536, 65_537, 300_000].map((n): [string, Buffer] => [`head -c ${n} /dev/zero | tr '\\0' x`, Buffer.alloc(n, 'x')]),
      [`head -c 254 /dev/zero | tr '\\0' y; printf '${octal('é')}'`, Buffer.from(`${'y'.repeat(254)}é`)],
    ];
    for (const [command, bytes] of cases) {
      const result = await ports.run(`{ ${command}; } | tee /dev/stderr`, { timeoutMs: 5_000 }, noKill);
      expect(result?.stdout.equals(bytes)).toBe(true);
      expect(result?.stderr.equals(bytes)).toBe(true);
    }
  });

  it('output over 16 MiB is cut at 16 MiB and said to be, the rest read and dropped as the agent does; the port stays in step and its memory is given back', async () => {
    const { connect, server } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    // The writer is not cut off: it writes all it has, and the answer says how much that was.
    const big = await ports.run(`head -c ${EXEC_OUTPUT_CAP + 1_000_000} /dev/zero; echo "head $?" >&2`, { timeoutMs: 20_000 }, noKill);
    expect(big?.truncated).toBe(true);
    expect(big?.stdout.length).toBe(EXEC_OUTPUT_CAP);
    expect(big?.stderr.toString()).toBe('head 0\n');
    // Exactly the cap is whole; one byte more is cut.
    const exact = await ports.run(`head -c ${EXEC_OUTPUT_CAP} /dev/zero`, { timeoutMs: 20_000 }, noKill);
    expect(exact).toMatchObject({ truncated: false, exitCode: 0 });
    expect(exact?.stdout.length).toBe(EXEC_OUTPUT_CAP);
    expect((await ports.run(`head -c ${EXEC_OUTPUT_CAP + 1} /dev/zero`, { timeoutMs: 20_000 }, noKill))?.truncated).toBe(true);
    expect((await ports.run('echo next', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('next\n');
    // The 16 MiB it held is given back once the answer is sent.
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]);
    expect(rssKb).toBeLessThan(8 * 1024);
  });

  it('a timeout ends the command and all it started; the port is free again once the answer is read', async () => {
    const { connect, dir } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    const t0 = Date.now();
    await expect(ports.run(`sleep 30 & echo $! > ${dir}/child; sleep 30`, { timeoutMs: 500 }, killChildren)).rejects.toMatchObject({ code: 'exec_timeout' });
    expect(Date.now() - t0).toBeLessThan(3_000);
    const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
    await expect.poll(() => existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z '), { timeout: 3_000 }).toBe(false);
    await expect.poll(async () => (await ports.run('echo free', { timeoutMs: 5_000 }, noKill))?.stdout.toString(), { timeout: 3_000 }).toBe('free\n');
  });

  it('a command that is running keeps its port: the next one takes another, and with none free the caller is told to use the agent', async () => {
    const first = startServer();
    const second = startServer();
    const ports = new ExecPorts([first.connect, second.connect], 'm-1', undefined, quick);
    const slow = ports.run('sleep 1; echo slow', { timeoutMs: 5_000 }, noKill);
    const other = ports.run('sleep 1; echo other', { timeoutMs: 5_000 }, noKill);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await ports.run('echo none free', { timeoutMs: 5_000 }, noKill)).toBeUndefined();
    expect((await slow)?.stdout.toString()).toBe('slow\n');
    expect((await other)?.stdout.toString()).toBe('other\n');
    expect((await ports.run('echo again', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('again\n');
  });

  it('a process left running with the output open holds the answer until it closes it, as through the agent', async () => {
    const { connect } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    const t0 = Date.now();
    const held = await ports.run('(sleep 0.3; echo late; echo late >&2) & echo now', { timeoutMs: 5_000 }, noKill);
    expect(held?.stdout.toString()).toBe('now\nlate\n');
    expect(held?.stderr.toString()).toBe('late\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // Started with its output elsewhere, it does not hold it.
    const t1 = Date.now();
    expect((await ports.run('sleep 2 >/dev/null 2>&1 & echo now', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('now\n');
    expect(Date.now() - t1).toBeLessThan(1_500);
    expect((await ports.run('echo mine', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('mine\n');
  });

  it('input the guest cannot keep is read off the port all the same: the command is not run, says why, and the port stays in step', async () => {
    // A file size limit on the server (its memory file for the input) stands in for a guest out of memory.
    const { connect, dir } = startLocal(shell && busyboxSh(), ['prlimit', '--fsize=100000']);
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    const refused = await ports.run(`touch ${dir}/ran; cat`, { timeoutMs: 5_000, input: Buffer.alloc(300_000, 'i') }, noKill);
    expect(refused).toMatchObject({ exitCode: 126 });
    expect(refused?.stderr.toString()).toMatch(/^fleetbox-exec: no room for the command's input/);
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    const small = await ports.run('cat', { timeoutMs: 5_000, input: Buffer.from('fits\n') }, noKill);
    expect(small?.stdout.toString()).toBe('fits\n');
  });

  it('commands a port does not take (NUL, over 16 KiB, empty) are left to the agent; nothing is sent', async () => {
    const { connect } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    expect(await ports.run('echo a\0b', { timeoutMs: 5_000 }, noKill)).toBeUndefined();
    expect(await ports.run(`: ${'x'.repeat(20_000)}`, { timeoutMs: 5_000 }, noKill)).toBeUndefined();
    expect(await ports.run('', { timeoutMs: 5_000 }, noKill)).toBeUndefined();
    expect((await ports.run('echo ok', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('ok\n');
  });

  it("a command's shell that died before its request is replaced: the command still runs", async () => {
    const { connect, server } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    expect((await ports.run('echo first', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('first\n');
    // The shell started ahead for the next command, killed while it waits.
    const waiting = () => readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim();
    await expect.poll(waiting).toMatch(/^\d+$/);
    const shell = Number(waiting());
    process.kill(shell, 'SIGKILL');
    // Dead before the request comes (a zombie until the server looks).
    await expect.poll(() => !existsSync(`/proc/${shell}`) || readFileSync(`/proc/${shell}/stat`, 'utf8').includes(') Z ')).toBe(true);
    const after = await ports.run('echo "$0 ran"', { timeoutMs: 5_000 }, noKill);
    expect(after).toMatchObject({ exitCode: 0 });
    expect(after?.stdout.toString()).toBe('/bin/sh ran\n');
  });

  it('the server gone mid-command (guest powering off): unreachable at once, and that port is not used again', async () => {
    const { connect, server, dir } = startServer();
    const problems: string[] = [];
    const ports = new ExecPorts([connect], 'm-1', (why) => problems.push(why), quick);
    expect((await ports.run('echo up', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('up\n');
    const pending = ports.run(`echo $$ > ${dir}/command; exec sleep 30`, { timeoutMs: 60_000 }, noKill);
    await expect.poll(() => existsSync(join(dir, 'command'))).toBe(true);
    // The server ends, as with QEMU gone: the host's end of the pair closes (the command does not hold it).
    server.kill('SIGKILL');
    await expect(pending).rejects.toMatchObject({ code: 'unreachable' });
    process.kill(Number(readFileSync(join(dir, 'command'), 'utf8')), 'SIGKILL');
    expect(problems).toEqual([expect.stringContaining('exec port 0')]);
    expect(await ports.run('echo x', { timeoutMs: 5_000 }, noKill)).toBeUndefined();
  });

  it('a server that stops answering costs one command its timeout; its port stays taken and the next command goes elsewhere', async () => {
    // Stopped, not ended: the host's end stays open, as a virtio port does when the process on
    // it dies (nothing tells the host).
    const first = startServer();
    const second = startServer();
    const problems: string[] = [];
    const ports = new ExecPorts([first.connect, second.connect], 'm-1', (why) => problems.push(why), quick);
    expect((await ports.run('echo up', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('up\n');
    process.kill(-(first.server.pid as number), 'SIGSTOP');
    await expect(ports.run('echo lost', { timeoutMs: 300 }, killChildren)).rejects.toMatchObject({ code: 'exec_timeout' });
    expect((await ports.run('echo next', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('next\n');
    // Once it answers again, its port is free again: the late answer was read off it.
    process.kill(-(first.server.pid as number), 'SIGCONT');
    const both = () => Promise.all([ports.run('sleep 0.3; echo a', { timeoutMs: 5_000 }, noKill), ports.run('sleep 0.3; echo b', { timeoutMs: 5_000 }, noKill)]);
    await expect.poll(async () => (await both()).map((r) => r?.stdout.toString()), { timeout: 5_000 }).toEqual(['a\n', 'b\n']);
    expect(problems).toEqual([]);
  });

  it('a timeout that fires before the command has started still ends it once it starts', async () => {
    const { connect, server, dir } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    expect((await ports.run('true', { timeoutMs: 5_000 }, noKill))?.exitCode).toBe(0);
    // The server cannot read the request until it is let go, after the timeout and the kill were sent.
    process.kill(-(server.pid as number), 'SIGSTOP');
    const killed = new Promise<void>((resolve) => {
      void ports.run(`sleep 2; touch ${dir}/ran`, { timeoutMs: 300 }, (script) => killChildren(script).then(resolve)).catch(() => undefined);
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    process.kill(-(server.pid as number), 'SIGCONT');
    await killed;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    expect((await ports.run('echo after', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('after\n');
  });

  it.skipIf(!strace)('a timeout kill that lands between the PID being written and the command being handed over: the command never runs', async () => {
    // strace holds the server's second writev (the first answers the hello) for 1.5 s: the one
    // that hands the command to its shell, after the shell's PID went to <dir>.id.
    const { connect, dir } = startLocal(shell && busyboxSh(), ['strace', '-o', '/dev/null', '-e', 'trace=writev', '-e', 'inject=writev:delay_enter=1500000:when=2']);
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    let killed: Promise<void> = Promise.resolve();
    const kill = (script: string) => (killed = killChildren(script));
    await expect(ports.run(`touch ${dir}/ran`, { timeoutMs: 500 }, kill)).rejects.toMatchObject({ code: 'exec_timeout' });
    await killed;
    // The late answer frees the port: the shell ended before it took the command.
    await expect.poll(async () => (await ports.run('echo after', { timeoutMs: 2_000 }, noKill))?.stdout.toString(), { timeout: 5_000 }).toBe('after\n');
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });

  it('a timeout kill that comes late ends nothing of the next command on the port', async () => {
    const { connect } = startServer();
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    // The kill is held back until the next command runs: it must find that one and leave it be.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const lateKill = async (script: string) => {
      await held;
      await killChildren(script);
    };
    await expect(ports.run('sleep 0.4; echo first', { timeoutMs: 200 }, lateKill)).rejects.toMatchObject({ code: 'exec_timeout' });
    // The first one ends on its own; its answer frees the port.
    await expect.poll(async () => (await ports.run('true', { timeoutMs: 2_000 }, noKill))?.exitCode, { timeout: 3_000 }).toBe(0);
    const second = ports.run('sleep 0.6; echo second', { timeoutMs: 5_000 }, noKill);
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    expect(await second).toMatchObject({ exitCode: 0 });
    expect((await second)?.stdout.toString()).toBe('second\n');
  });

  it('a silent port is waited for once, within its hello time and half the budget; later commands pass it over at once', async () => {
    const silent = startFake(() => undefined);
    const { connect } = startServer();
    const ports = new ExecPorts([silent, connect], 'm-1', undefined, { helloMs: 800, outputMs: 2_000 });
    let t0 = Date.now();
    expect((await ports.run('echo first', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('first\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    t0 = Date.now();
    expect((await ports.run('echo second', { timeoutMs: 5_000 }, noKill))?.stdout.toString()).toBe('second\n');
    expect(Date.now() - t0).toBeLessThan(400);
    // A short budget is not spent on a hello: half of it at most, and the command still runs.
    const other = new ExecPorts([startFake(() => undefined), startServer().connect], 'm-2', undefined, { helloMs: 5_000, outputMs: 2_000 });
    t0 = Date.now();
    expect((await other.run('echo short', { timeoutMs: 1_000 }, noKill))?.stdout.toString()).toBe('short\n');
    expect(Date.now() - t0).toBeLessThan(900);
  });

  it('a request cut short (the host gone mid-write) is never run', async () => {
    const { connect, dir } = startServer();
    const stream = await connect();
    stream.send(Buffer.from(`E 1 0\ntouch ${dir}/ran; echo more`));
    stream.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    // Input shorter than announced: not run either.
    const second = startServer();
    const raw = await second.connect();
    raw.send(Buffer.concat([Buffer.from(`E 1 100\ntouch ${second.dir}/ran\0`), Buffer.alloc(10)]));
    raw.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(existsSync(join(second.dir, 'ran'))).toBe(false);
  });

  it('an answer out of step gives the port up with an io error; a server that has not said hello is passed over', async () => {
    // A stand-in for a guest whose server answers a request with another's id.
    const wrong = startFake((line, reply) => {
      const hello = /^H (\S+)$/.exec(line);
      if (hello) reply(`FLEETBOX_EXEC 1 ${hello[1]} 42 /run/fleetbox-exec/1\n`);
      else if (line.startsWith('E ')) reply('X 999 0 0 0\nZ 999\n');
    });
    const silent = startFake(() => undefined);
    const problems: string[] = [];
    const ports = new ExecPorts([silent, wrong], 'm-1', (why) => problems.push(why), { helloMs: 300, outputMs: 300 });
    await expect(ports.run('true', { timeoutMs: 5_000 }, noKill)).rejects.toMatchObject({ code: 'io', message: expect.stringContaining('out of step') });
    // The silent one is passed over (its hello may still come); the wrong one is given up.
    expect(problems).toEqual([expect.stringMatching(/exec port 1: it answered "X 999/)]);
    expect(await ports.run('true', { timeoutMs: 5_000 }, noKill)).toBeUndefined();
  });
});

describe('exec ports: a shell that cannot start', () => {
  it('the command fails with 127 and says why; the port stays in step', async () => {
    const { connect } = startLocal(join(scratch(), 'no-such-sh'));
    const ports = new ExecPorts([connect], 'm-1', undefined, quick);
    for (const command of ['echo never', 'echo again']) {
      const failed = await ports.run(command, { timeoutMs: 5_000 }, noKill);
      expect(failed).toMatchObject({ exitCode: 127 });
      expect(failed?.stdout.toString()).toBe('');
      expect(failed?.stderr.toString()).toMatch(/^fleetbox-exec: the command's shell/);
    }
  });
});

/** A stand-in server on a unix socket: `onLine` sees each request line (commands and input are not parsed). */
function startFake(onLine: (line: string, reply: (text: string) => void) => void): () => Promise<PortStream> {
  const path = join(scratch(), 'fake.sock');
  const server = createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        onLine(line, (text) => socket.write(text));
      }
    });
  });
  server.listen(path);
  servers.push(server);
  return () => PortStream.open(path);
}
