import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach } from '../../dist/index.js';
import { buildImage } from '../../dist/lib/image.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

/*
 * A real distributed system nobody here wrote, from Debian's packages, as a 3-member cluster:
 * Redis with two replicas, once on the host's root (redis-server installed on the host) and once
 * on an image built with `fleetbox image build`. A replica is stopped, the primary takes a write,
 * the replica re-joins, finds its old data on its own disk and then serves the new write.
 */

const run = promisify(execFile);
const hostRedis = existsSync('/usr/bin/redis-server') ? undefined : 'redis-server is not installed on the host (.ci/run installs it)';
const hostEtcd = existsSync('/usr/bin/etcd') && existsSync('/usr/bin/etcdctl') ? undefined : 'etcd is not installed on the host (.ci/run installs etcd-server and etcd-client)';
const skip = reportSkip('distributed-system VM tests', cannotBootVms());
let store: Store;

function cli(args: string[], timeout = 180_000) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home }, timeout, maxBuffer: 16 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function sh(member: string, command: string): Promise<string> {
  const result = await cli(['ssh', member, '--', command]);
  expect(result.code, `${member}: ${command}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** redis-server on the member's disk, as a daemon; `replicaOf` makes it a replica. */
function startRedis(member: string, replicaOf?: string): Promise<string> {
  const replica = replicaOf ? ` --replicaof ${replicaOf} 6379` : '';
  return sh(
    member,
    'mkdir -p /data/redis && redis-server --bind 0.0.0.0 --protected-mode no --dir /data/redis --appendonly yes ' +
      `--daemonize yes --logfile /data/redis/log${replica} && until redis-cli ping >/dev/null 2>&1; do sleep 0.1; done`,
  );
}

/** Polls `key` on `member` until it has a value (bounded), and returns it. */
function awaitKey(member: string, key: string): Promise<string> {
  return sh(member, `for i in $(seq 100); do v=$(redis-cli get ${key}); [ -n "$v" ] && echo "$v" && exit 0; sleep 0.1; done; exit 1`);
}

async function replicationScenario(cluster: string): Promise<void> {
  const [primary, replica, stopped] = [`${cluster}-1`, `${cluster}-2`, `${cluster}-3`];
  await startRedis(primary);
  await startRedis(replica, primary);
  await startRedis(stopped, primary);
  expect(await sh(primary, 'redis-cli set before "written by all three"')).toBe('OK\n');
  expect(await awaitKey(stopped, 'before')).toBe('written by all three\n');

  expect((await cli(['down', stopped])).code).toBe(0);
  expect(await sh(primary, 'redis-cli set during "taken while a replica was down"')).toBe('OK\n');
  expect(await awaitKey(replica, 'during')).toBe('taken while a replica was down\n');

  const back = await cli(['up', stopped]);
  expect(back.code, back.stderr).toBe(0);
  // Alone first: what it serves now came from its own disk, not from the primary.
  await startRedis(stopped);
  expect(await sh(stopped, 'redis-cli get before; redis-cli get during')).toBe('written by all three\n\n');
  expect(await sh(stopped, `redis-cli replicaof ${primary} 6379`)).toBe('OK\n');
  expect(await awaitKey(stopped, 'during')).toBe('taken while a replica was down\n');
}

/** etcd v3's client on a member, talking to the member's own etcd; a command gets `timeoutS`. */
const etcdctl = (args: string, timeoutS = 4) => `ETCDCTL_API=3 etcdctl --command-timeout=${timeoutS}s ${args}`;

/** One etcd per member of a 3-member cluster, static bootstrap; heartbeats slowed for emulated CPUs. */
async function startEtcd(cluster: string, ips: string[]): Promise<void> {
  const peers = ips.map((ip, i) => `${cluster}-${i + 1}=http://${ip}:2380`).join(',');
  for (const [i, ip] of ips.entries()) {
    await sh(
      `${cluster}-${i + 1}`,
      `mkdir -p /data/etcd && (etcd --name ${cluster}-${i + 1} --data-dir /data/etcd/member --listen-peer-urls http://${ip}:2380 ` +
        `--initial-advertise-peer-urls http://${ip}:2380 --listen-client-urls http://${ip}:2379,http://127.0.0.1:2379 ` +
        `--advertise-client-urls http://${ip}:2379 --initial-cluster ${peers} --initial-cluster-state new ` +
        `--heartbeat-interval 200 --election-timeout 2000 >/data/etcd/log 2>&1 &)`,
    );
  }
  for (const i of ips.keys()) await sh(`${cluster}-${i + 1}`, `for i in $(seq 150); do ${etcdctl('endpoint health')} >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1`);
}

beforeAll(() => {
  if (!skip) store = new Store(vmStore().home).ensure();
});
afterAll(async () => {
  if (!skip) await destroyStore(store);
}, 60_000);

describe.skipIf(skip)('distributed systems from Debian packages (Redis, etcd)', () => {
  it.skipIf(reportSkip('Redis on the host root', hostRedis))('on --rootfs host: a replica stopped, a write taken, the replica re-joins with its data and serves it', async () => {
    const up = await cli(['up', 'rh', '-n', '3', '--rootfs', 'host', '--disk', '64']);
    expect(up.code, up.stderr).toBe(0);
    await replicationScenario('rh');
    expect((await cli(['rm', 'rh', '--yes'])).code).toBe(0);
  }, 240_000);

  it.skipIf(reportSkip('etcd on the host root', hostEtcd))('etcd (Raft) split by a partition: the minority cannot commit a write, the majority can; after heal the minority catches up', async () => {
    const up = await cli(['up', 'et', '-n', '3', '--rootfs', 'host', '--mem', '384']);
    expect(up.code, up.stderr).toBe(0);
    const cluster = await attach('et', { home: store.home });
    await startEtcd('et', cluster.members.map((m) => m.ip));
    expect(await sh('et-1', etcdctl('put k "written by all three"'))).toBe('OK\n');

    await cluster.partition(['et-1'], ['et-2', 'et-3']);
    // The minority has no quorum: its write times out and is never committed.
    const minority = await cli(['ssh', 'et-1', '--', etcdctl('put k "minority"')]);
    expect(minority.code, minority.stdout).not.toBe(0);
    expect(minority.stdout + minority.stderr).toMatch(/deadline exceeded|timed out/);
    // The majority commits, once it has a leader on its side (an election when et-1 led).
    expect(await sh('et-2', `for i in $(seq 20); do ${etcdctl('put k "majority"', 3)} 2>/dev/null && exit 0; sleep 0.5; done; exit 1`)).toBe('OK\n');
    expect(await sh('et-3', etcdctl('get k --print-value-only'))).toBe('majority\n');
    // What the minority serves from its own copy is the last value it saw committed.
    expect(await sh('et-1', etcdctl('get k --consistency=s --print-value-only'))).toBe('written by all three\n');

    expect(await cluster.heal()).toMatchObject([{ kind: 'partition' }]);
    const caughtUp = `for i in $(seq 150); do v=$(${etcdctl('get k --consistency=s --print-value-only')}); [ "$v" = majority ] && echo "$v" && exit 0; sleep 0.2; done; exit 1`;
    expect(await sh('et-1', caughtUp)).toBe('majority\n');
    // And it takes part again: a write through it commits.
    expect(await sh('et-1', `for i in $(seq 20); do ${etcdctl('put k2 "after heal"', 3)} 2>/dev/null && exit 0; sleep 0.5; done; exit 1`)).toBe('OK\n');
    expect((await cli(['rm', 'et', '--yes'])).code).toBe(0);
  }, 300_000);

  it('on a built image: the same, and the image is cached, listed, and kept while members use it', async () => {
    const build = await cli(['image', 'build', 'redis', '--packages', 'redis-server', '--json'], 900_000);
    expect(build.code, build.stderr).toBe(0);
    expect(JSON.parse(build.stdout)).toMatchObject({ name: 'redis', packages: ['redis-server'] });
    const again = await cli(['image', 'build', 'redis', '--packages', 'redis-server', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ cached: true });
    // The library's way to the same image: unchanged inputs, so the cached one at once.
    const fromLibrary = await buildImage({ name: 'redis', packages: ['redis-server'], home: store.home, onProgress: () => {} });
    expect(fromLibrary).toMatchObject({ name: 'redis', cached: true, hash: (JSON.parse(build.stdout) as { hash: string }).hash });

    const up = await cli(['up', 'ri', '-n', '3', '--image', 'redis', '--disk', '64']);
    expect(up.code, up.stderr).toBe(0);
    expect(await sh('ri-1', '. /etc/os-release; echo $ID; command -v redis-server')).toBe('debian\n/usr/bin/redis-server\n');
    await replicationScenario('ri');
    // The image has no iproute2: a delay runs the tc that fleetbox copied in. A redis round trip
    // (TCP handshake, then PING) from the delayed member takes two delays at least.
    expect((await cli(['fault', 'delay', 'ri-2', '--ms', '200'])).code).toBe(0);
    const ms = Number(await sh('ri-2', 't=$(date +%s%N); redis-cli -h ri-1 ping >/dev/null; echo $(( ($(date +%s%N) - t) / 1000000 ))'));
    expect(ms).toBeGreaterThanOrEqual(400);
    expect((await cli(['fault', 'heal', 'ri-2'])).code).toBe(0);

    const listed = JSON.parse((await cli(['image', 'ls', '--json'])).stdout) as { name: string; usedBy: string[] }[];
    expect(listed.find((i) => i.name === 'redis')?.usedBy).toEqual(['ri-1', 'ri-2', 'ri-3']);
    const refused = await cli(['image', 'rm', 'redis']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toBe("fleetbox: image redis is used by ri-1, ri-2, ri-3; 'fleetbox rm' them first");
    expect((await cli(['rm', 'ri', '--yes'])).code).toBe(0);
  }, 900_000);

  it('--init systemd: the image\'s systemd is PID 1, the member is running once the system is up, and down powers it off through systemd', async () => {
    const plain = await cli(['up', 'np', '--image', 'redis', '--init', 'systemd']);
    expect(plain.code).toBe(2);
    expect(plain.stderr.trim()).toBe('fleetbox: image redis has no systemd; build it with --packages systemd-sysv,redis-server');
    const build = await cli(['image', 'build', 'sysd', '--packages', 'systemd-sysv'], 900_000);
    expect(build.code, build.stderr).toBe(0);
    const up = await cli(['up', 'sd', '--image', 'sysd', '--init', 'systemd']);
    expect(up.code, up.stderr).toBe(0);
    expect(await sh('sd-1', 'cat /proc/1/comm; systemctl is-system-running || true')).toMatch(/^systemd\n(running|degraded)\n$/);
    const down = await cli(['down', 'sd-1']);
    expect(down.code, down.stderr).toBe(0);
    const steps = readFileSync(store.holderLogPath('sd'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"qemu_stop_step"'))
      .map((line) => (JSON.parse(line) as { step: string }).step);
    // Powered off by the guest (systemd's shutdown), not quit or killed from outside.
    expect(steps).toEqual(['powerdown']);
    expect(readFileSync(store.serialLogPath('sd', 'sd-1'), 'utf8')).toMatch(/reboot: Power down/);
    expect((await cli(['rm', 'sd', '--yes'])).code).toBe(0);
  }, 900_000);

  it('a package that does not exist: one line naming it, nothing cached', async () => {
    const build = await cli(['image', 'build', 'broken', '--packages', 'redis-server,no-such-package-fbx'], 600_000);
    expect(build.code).toBe(1);
    const last = build.stderr.trim().split('\n').at(-1);
    expect(last).toMatch(/^fleetbox: image broken was not built: package no-such-package-fbx does not exist in Debian [a-z]+; check the name \(apt-cache search …\)$/);
    const roots = join(store.imagesDir, 'roots');
    expect(readdirSync(roots).filter((e) => e.startsWith('broken') || e.startsWith('.build-broken'))).toEqual([]);
    expect((JSON.parse((await cli(['image', 'ls', '--json'])).stdout) as { name: string }[]).map((i) => i.name)).not.toContain('broken');
  }, 600_000);

  it('a disk that fills up during a build: one line saying so, nothing cached, no scratch left', async () => {
    const full = mkdtempSync('/tmp/fbx-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'fbx-full', full]);
    try {
      const build = await run(CLI, ['image', 'build', 'big', '--packages', 'redis-server'], { env: { ...process.env, FLEETBOX_HOME: full }, timeout: 600_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(build.code).toBe(1);
      expect(build.stderr.trim().split('\n').at(-1)).toMatch(/^fleetbox: image big was not built: the disk is full \(No space left on device\)/);
      expect(readdirSync(join(full, 'images', 'roots'))).toEqual(['big.lock'].filter((f) => existsSync(join(full, 'images', 'roots', f))));
    } finally {
      execFileSync('umount', [full]);
      rmSync(full, { recursive: true, force: true });
    }
  }, 600_000);
});
