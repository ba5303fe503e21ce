import { afterEach, describe, expect, it } from 'vitest';
import { up } from '../../dist/control/up.js';
import { stopMember } from '../../dist/control/stop.js';
import { getStatus } from '../../dist/control/status.js';
import { readMemberConfig } from '../../dist/store/members.js';
import { readPidfile } from '../../dist/store/pidfile.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { existsSync } from 'node:fs';
import type { Store } from '../../dist/store/layout.js';
import { alive, destroyStore, eventually, processesOf, tempStore } from '../helpers.js';

let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

describe('up / down / re-join (process backend)', () => {
  it('boots three members on their own loopback addresses and re-joins a stopped one with its IP', async () => {
    store = tempStore();
    const result = await up(store, { names: ['demo'], count: 3, spec: { backend: 'process' } });
    expect(result.members.map((m) => [m.name, m.state])).toEqual([
      ['demo-1', 'running'],
      ['demo-2', 'running'],
      ['demo-3', 'running'],
    ]);
    const ips = result.members.map((m) => m.ip);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);
    const holderPid = result.spawned.get('demo')?.pid;
    const ref = { cluster: 'demo', name: 'demo-2' };
    const oldPid = result.members[1]?.pid as number;

    const stopped = await stopMember(store, ref);
    expect(stopped.state).toBe('stopped');
    expect(isProcessAlive(oldPid)).toBe(false);
    expect(existsSync(store.pidfilePath('demo', 'demo-2'))).toBe(false);
    expect(existsSync(store.memberSocketPath('demo-2'))).toBe(false);
    expect((await getStatus(store, ref)).state).toBe('stopped');
    // the holder stays for the others
    expect((await getStatus(store, { cluster: 'demo', name: 'demo-1' })).state).toBe('running');

    const again = await up(store, { names: ['demo-2'] });
    expect(again.spawned.size).toBe(0); // joined the live holder, no new one
    expect(again.members[0]?.ip).toBe(ips[1]);
    expect(readPidfile(store.pidfilePath('demo', 'demo-2'))?.pid).toBe(holderPid);
  });

  it('the holder exits and cleans its sockets and pidfiles when the last member stops', async () => {
    store = tempStore();
    const result = await up(store, { names: ['solo'], spec: { backend: 'process' } });
    const holderPid = result.spawned.get('solo')?.pid as number;
    await stopMember(store, { cluster: 'solo', name: 'solo-1' });
    expect(await eventually(() => !isProcessAlive(holderPid))).toBe(true);
    expect(existsSync(store.controlSocketPath('solo'))).toBe(false);
    expect(existsSync(store.memberSocketPath('solo-1'))).toBe(false);
    expect(existsSync(store.pidfilePath('solo', 'solo-1'))).toBe(false);
  });

  it('a member whose command fails reports error with its output, and nothing is left running', async () => {
    store = tempStore();
    await expect(
      up(store, { names: ['bad'], spec: { backend: 'process', cmd: 'echo kaput >&2; exit 3' } }),
    ).rejects.toMatchObject({ code: 'boot_failed', message: expect.stringContaining('kaput') });
    const view = await getStatus(store, { cluster: 'bad', name: 'bad-1' });
    expect(view.state).toBe('error');
    expect(view.error).toContain('kaput');
    expect(await eventually(() => processesOf(store).length === 0)).toBe(true);
  });

  it('a member that never answers hits the boot timeout in the holder and is reaped', async () => {
    store = tempStore();
    await expect(up(store, { names: ['slow'], spec: { backend: 'process', cmd: 'sleep 100' }, bootTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'boot_failed',
      message: expect.stringContaining('boot timeout of 300 ms'),
    });
    expect(await eventually(() => processesOf(store).length === 0)).toBe(true);
  });

  it('the holder honours a boot timeout longer than its old 60 s default (up --timeout reaches it)', async () => {
    store = tempStore();
    // Listens only after 62 s: a holder that cut boots at 60 s would fail it.
    const late = `sleep 62; exec ${process.execPath} -e "require('net').createServer().listen(+process.env.FLEETBOX_PORT, process.env.FLEETBOX_IP)"`;
    const result = await up(store, { names: ['late'], spec: { backend: 'process', cmd: late }, bootTimeoutMs: 90_000 });
    expect(result.members.map((m) => m.state)).toEqual(['running']);
    expect(readMemberConfig(store, 'late', 'late-1')?.bootTimeoutMs).toBe(90_000);
    await stopMember(store, { cluster: 'late', name: 'late-1' });
  }, 120_000);

  it('a stop during boot abandons the boot and leaves no process', async () => {
    store = tempStore();
    // The outcome is taken at once: `up` fails while this test is still busy stopping the member.
    const booting = up(store, { names: ['abandon'], spec: { backend: 'process', cmd: 'sleep 100' }, bootTimeoutMs: 30_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const ref = { cluster: 'abandon', name: 'abandon-1' };
    expect(await eventually(() => existsSync(store.pidfilePath('abandon', 'abandon-1')))).toBe(true);
    await stopMember(store, ref);
    expect(await booting).toMatchObject({ name: 'FleetboxError' });
    expect((await getStatus(store, ref)).state).toBe('stopped');
    expect(await eventually(() => alive(processesOf(store)).length === 0)).toBe(true);
  });
});

describe('holder signals', () => {
  it('SIGTERM stops every member gracefully and the holder exits 0 leaving no socket or pidfile', async () => {
    store = tempStore();
    const result = await up(store, { names: ['term'], count: 2, spec: { backend: 'process' } });
    const holderPid = result.spawned.get('term')?.pid as number;
    const memberPids = result.members.map((m) => m.pid as number);
    process.kill(holderPid, 'SIGTERM');
    expect(await eventually(() => !isProcessAlive(holderPid) && alive(memberPids).length === 0)).toBe(true);
    for (const name of ['term-1', 'term-2']) {
      expect((await getStatus(store, { cluster: 'term', name })).state).toBe('stopped');
      expect(existsSync(store.pidfilePath('term', name))).toBe(false);
      expect(existsSync(store.memberSocketPath(name))).toBe(false);
    }
    expect(existsSync(store.controlSocketPath('term'))).toBe(false);
    // the member's own log shows it was asked to stop, not killed
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(store.serialLogPath('term', 'term-1'), 'utf8')).toContain('stopping on SIGTERM');
  });
});
