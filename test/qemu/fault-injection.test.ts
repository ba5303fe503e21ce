import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, type Cluster, type Member } from '../../dist/index.js';
import { readNetworkRecord } from '../../dist/net/address-book.js';
import { faultsPath } from '../../dist/store/faults-record.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, alive, destroyStore } from '../helpers.js';
import { cannotBootVms, namespaceExists, reportSkip, vmStore } from './harness.js';

const run = promisify(execFile);
const skip = reportSkip('fault injection on real VMs', cannotBootVms());
let store: Store;
let cluster: Cluster;
let m: Record<string, Member>;

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: '500' }, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** 0 when `from` reaches `to` by ping within `waitS` seconds, else ping's exit code. */
async function ping(from: string, to: string, waitS = 1): Promise<number> {
  const r = await m[from]?.exec(`ping -c1 -W${waitS} ${to} >/dev/null 2>&1; echo $?`, { timeoutMs: 10_000 });
  return Number(r?.stdout.trim());
}

/** What the bridge and the guests see, for a failure message. */
async function networkState(): Promise<string> {
  const namespace = readNetworkRecord(store, 'fi')?.namespace ?? '';
  const rules = await run('ip', ['netns', 'exec', namespace, 'nft', 'list', 'ruleset']).then((r) => r.stdout, (e: Error) => e.message);
  const fdb = await run('ip', ['netns', 'exec', namespace, 'bridge', 'fdb', 'show']).then((r) => r.stdout, (e: Error) => e.message);
  const neigh = (await m['fi-1']?.exec('ip neigh; ip -o link'))?.stdout;
  return `rules:\n${rules}\nfdb:\n${fdb}\nfi-1:\n${neigh}`;
}

/** `from` reaches a member that just (re)joined: by address, no name lookup in the way, a few tries. */
async function expectReachable(from: string, to: string): Promise<void> {
  const ip = (JSON.parse((await cli(['status', to, '--json'])).stdout) as { ip: string }).ip;
  let reached = false;
  for (let i = 0; i < 10 && !reached; i++) reached = (await ping(from, ip, 2)) === 0;
  expect(reached, reached ? '' : await networkState()).toBe(true);
}

/** Round trips (ms) of `count` pings from `from` to `to`, as busybox ping sums them up. */
async function roundTrips(from: string, to: string, count: number): Promise<{ min: number; avg: number; max: number }> {
  const r = await m[from]?.exec(`ping -c${count} -i0.2 -q ${to} | tail -1`, { timeoutMs: 20_000 });
  const match = /= ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r?.stdout ?? '');
  expect(match, `ping ${from} → ${to}: ${r?.stdout}${r?.stderr}`).not.toBeNull();
  const [min, avg, max] = (match ?? []).slice(1).map(Number) as [number, number, number];
  return { min, avg, max };
}

const uptime = async (name: string) => Number((await m[name]?.exec('cut -d" " -f1 /proc/uptime'))?.stdout.trim());

describe.skipIf(skip)('fault injection on real VMs', () => {
  beforeAll(async () => {
    store = new Store(vmStore().home).ensure();
    const up = await cli(['up', 'fi', '-n', '3']);
    expect(up.code, up.stderr).toBe(0);
    cluster = await attach('fi', { home: store.home });
    m = Object.fromEntries(cluster.members.map((x) => [x.name, x]));
  }, 300_000);

  afterAll(async () => {
    if (store) await destroyStore(store);
  });

  it('partition: the sides cannot reach each other, each side still can, status is amber with the heal command; heal restores', async () => {
    expect(await ping('fi-1', 'fi-3')).toBe(0);
    const faults = await cluster.partition(['fi-1', 'fi-2'], [m['fi-3'] as Member]);
    expect(faults).toMatchObject([{ kind: 'partition', sides: [['fi-1', 'fi-2'], ['fi-3']] }]);
    expect(await ping('fi-1', 'fi-3')).not.toBe(0);
    expect(await ping('fi-3', 'fi-2')).not.toBe(0);
    expect(await ping('fi-1', 'fi-2')).toBe(0);
    // The agent needs no network: the cut-off side still answers.
    expect((await m['fi-3']?.exec('hostname'))?.stdout).toBe('fi-3\n');
    expect((await cli(['fault', 'ls'])).stdout).toMatch(/^partition +fi-1 fi-2 \/ fi-3 /);
    await expect
      .poll(async () => JSON.parse((await cli(['status', 'fi-3', '--json'])).stdout) as { status: string; problem: string; action: string }, { timeout: 10_000, interval: 250 })
      .toMatchObject({ status: 'amber', problem: expect.stringContaining('fault injected: partition fi-1 fi-2 / fi-3'), action: expect.stringContaining('fleetbox fault heal') });
    expect(await cluster.heal()).toHaveLength(1);
    expect(await ping('fi-1', 'fi-3')).toBe(0);
    expect(existsSync(faultsPath(store, 'fi'))).toBe(false);
  }, 120_000);

  it('isolate from the CLI cuts one member off from all others; heal of that member ends it', async () => {
    expect((await cli(['fault', 'isolate', 'fi-2'])).code).toBe(0);
    expect(await ping('fi-1', 'fi-2')).not.toBe(0);
    expect(await ping('fi-3', 'fi-2')).not.toBe(0);
    expect(await ping('fi-1', 'fi-3')).toBe(0);
    expect((await cli(['fault', 'heal', 'fi-2'])).stdout).toMatch(/^healed isolate +fi-2/);
    expect(await ping('fi-1', 'fi-2')).toBe(0);
  }, 120_000);

  it('delay: what a member sends to one peer is 200 ms late (round trip ≥ 200 and < 300 ms), to others not; loss replaces it; heal ends it in the guest', async () => {
    const faults = await m['fi-2']?.delay({ ms: 200, to: [m['fi-1'] as Member] });
    expect(faults).toMatchObject([{ kind: 'delay', member: 'fi-2', shape: { delayMs: 200, jitterMs: 0, lossPercent: 0 }, to: ['fi-1'] }]);
    const slow = await roundTrips('fi-1', 'fi-2', 5);
    expect(slow.min).toBeGreaterThanOrEqual(200);
    expect(slow.avg).toBeLessThan(300);
    expect((await roundTrips('fi-3', 'fi-2', 3)).avg).toBeLessThan(100);
    await expect
      .poll(async () => JSON.parse((await cli(['status', 'fi-2', '--json'])).stdout) as { status: string; problem: string }, { timeout: 10_000, interval: 250 })
      .toMatchObject({ status: 'amber', problem: expect.stringContaining('fault injected: fi-2 sends with 200 ms delay to fi-1') });

    // From the CLI, a new delay replaces the member's last one: now nothing reaches fi-1.
    const lossy = await cli(['fault', 'delay', 'fi-2', '--loss', '100%', '--to', 'fi-1']);
    expect(lossy.stdout).toMatch(/^delay +fi-2: 100% loss to fi-1 /);
    expect(lossy.stdout.trim().split('\n')).toHaveLength(1);
    expect(await ping('fi-1', 'fi-2')).not.toBe(0);
    expect(await ping('fi-3', 'fi-2')).toBe(0);

    expect((await cli(['fault', 'heal', 'fi-1'])).stdout).toMatch(/^healed delay +fi-2: 100% loss to fi-1/);
    expect((await m['fi-2']?.exec('/bin/tc qdisc show'))?.stdout).not.toContain('netem');
    expect((await roundTrips('fi-1', 'fi-2', 3)).avg).toBeLessThan(100);
  }, 120_000);

  it('pause freezes the VM (exec cannot run, its clock stops); resume brings it back with its uptime intact', async () => {
    const t0 = Date.now();
    const before = await uptime('fi-2');
    await m['fi-2']?.pause();
    const paused = Date.now();
    await expect(m['fi-2']?.exec('true', { timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'exec_timeout' });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const resumed = Date.now();
    await m['fi-2']?.resume();
    const after = await uptime('fi-2');
    const t1 = Date.now();
    // Its clock ran only while it ran: before the pause took hold and after the resume (however
    // slow those steps are on a loaded machine), never in the 5 s it was frozen.
    const runningS = (paused - t0 + (t1 - resumed)) / 1000;
    expect(after - before).toBeLessThanOrEqual(runningS + 0.25);
    expect(resumed - paused).toBeGreaterThanOrEqual(5_000);
    expect(after).toBeGreaterThan(before);
  }, 120_000);

  it('down of a member with faults heals them; the member comes back with up', async () => {
    await m['fi-3']?.isolate();
    expect((await cli(['down', 'fi-3'])).code).toBe(0);
    expect((await cli(['fault', 'ls', '--json'])).stdout).toBe('[]\n');
    expect((await cli(['up', 'fi-3'])).code).toBe(0);
    await expectReachable('fi-1', 'fi-3');
  }, 180_000);

  it('crash is a power cut: no shutdown in the guest, the member ends stopped (not failed), up boots it again', async () => {
    const pid = m['fi-2']?.pid;
    await m['fi-2']?.crash();
    expect(alive([pid ?? 0])).toEqual([]);
    const view = JSON.parse((await cli(['status', 'fi-2', '--json'])).stdout) as { state: string };
    expect(view.state).toBe('stopped');
    const serial = (await cli(['logs', 'fi-2'])).stdout;
    expect(serial).not.toContain('FLEETBOX_POWERDOWN');
    expect((await cli(['up', 'fi-2'])).code).toBe(0);
    await expectReachable('fi-1', 'fi-2');
  }, 180_000);

  it('a holder killed with faults in force leaves nothing: the namespace and the record go at the next command', async () => {
    await cluster.partition(['fi-1'], ['fi-2']);
    const holder = (JSON.parse((await cli(['status', 'fi-1', '--json'])).stdout) as { holderPid: number }).holderPid;
    const namespace = readNetworkRecord(store, 'fi')?.namespace ?? '';
    process.kill(holder, 'SIGKILL');
    await expect.poll(() => alive([holder]).length, { timeout: 5_000 }).toBe(0);
    expect((await cli(['rm', 'fi', '--yes'])).code).toBe(0);
    expect(namespaceExists(namespace)).toBe(false);
    expect(existsSync(faultsPath(store, 'fi'))).toBe(false);
  }, 120_000);
});
