import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEMPLATE_MAC } from '../../dist/backend/qemu/command-line.js';
import { ensureTemplate, templateKey, templatesDir } from '../../dist/backend/qemu/template.js';
import { ensureImage } from '../../dist/image/ensure-image.js';
import { attach, startCluster, type Cluster } from '../../dist/index.js';
import { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore } from '../helpers.js';
import { scratch } from '../scratch.js';
import { cannotBootVms, memoryLogger, reportSkip, vmStore } from './harness.js';

/*
 * Fast starts: members cloned from a booted template (QEMU memory-backend-file + x-ignore-shared
 * migration) instead of booted. One 3-member cluster is shared by the checks of a clone's identity.
 */

const run = promisify(execFile);
const skip = reportSkip('template clones on real VMs', cannotBootVms());
let store: Store;
let cluster: Cluster;

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home }, timeout: 180_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** The holder log's events of `cluster` with `event`, parsed. */
function events(clusterName: string, event: string): Record<string, unknown>[] {
  return readFileSync(store.holderLogPath(clusterName), 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function sh(member: string, command: string): Promise<string> {
  const m = cluster.members.find((x) => x.name === member);
  const r = await m?.exec(command);
  expect(r?.exitCode, `${member}: ${command}: ${r?.stderr}`).toBe(0);
  return r?.stdout ?? '';
}

describe.skipIf(skip)('fast starts: members cloned from a booted template', () => {
  beforeAll(async () => {
    store = new Store(vmStore().home).ensure();
    const up = await cli(['up', 'tf', '-n', '3', '--fast']);
    expect(up.code, up.stderr).toBe(0);
    cluster = await attach('tf', { home: store.home });
  }, 300_000);

  afterAll(async () => {
    if (store) await destroyStore(store);
  }, 60_000);

  it('up --fast: each member is a restored clone, not a boot, and says so on its console', () => {
    const started = events('tf', 'qemu_started');
    expect(started).toHaveLength(3);
    for (const e of started) expect(e.clone).toMatch(/^[0-9a-f]{16}$/);
    for (const name of ['tf-1', 'tf-2', 'tf-3']) {
      const console = readFileSync(store.serialLogPath('tf', name), 'utf8');
      expect(console).toMatch(new RegExp(`FLEETBOX_READY ${name} ip=\\S+ clone `));
      // No kernel boot on this console: the clone woke up where the template was saved.
      expect(console).not.toContain('Linux version');
    }
  });

  it('clones are different machines: own name, MAC, address and boot id; they reach each other by name; their clock is the host\'s', async () => {
    const seen = { host: new Set<string>(), mac: new Set<string>(), boot: new Set<string>() };
    for (const m of cluster.members) {
      seen.host.add((await sh(m.name, 'hostname')).trim());
      const mac = (await sh(m.name, 'cat /sys/class/net/eth0/address')).trim();
      expect(mac).not.toBe(TEMPLATE_MAC);
      seen.mac.add(mac);
      seen.boot.add((await sh(m.name, 'cat /proc/sys/kernel/random/boot_id')).trim());
      expect((await sh(m.name, 'ip -o -4 addr show eth0')).includes(` ${m.ip}/`)).toBe(true);
      const guestNow = Number((await sh(m.name, 'date +%s')).trim());
      expect(Math.abs(guestNow - Date.now() / 1000)).toBeLessThan(5);
    }
    expect([...seen.host].sort()).toEqual(['tf-1', 'tf-2', 'tf-3']);
    expect(seen.mac.size).toBe(3);
    expect(seen.boot.size).toBe(3);
    expect(await sh('tf-1', 'ping -c1 -W2 tf-3 >/dev/null && ping -c1 -W2 tf-2 >/dev/null && echo reached')).toBe('reached\n');
  });

  it('a clone that is stopped and started again is cloned again and keeps its address; faults work on clones', async () => {
    const m = cluster.members.find((x) => x.name === 'tf-2');
    const ip = m?.ip;
    await m?.stop();
    await m?.start();
    expect(m?.ip).toBe(ip);
    expect(events('tf', 'qemu_started').filter((e) => e.member === 'tf-2' && e.clone)).toHaveLength(2);
    expect(await sh('tf-1', 'ping -c1 -W2 tf-2 >/dev/null && echo reached')).toBe('reached\n');
    await m?.delay({ ms: 100 });
    expect(Number(/= [\d.]+\/([\d.]+)\//.exec(await sh('tf-1', 'ping -c2 -q tf-2 | tail -1'))?.[1])).toBeGreaterThanOrEqual(100);
    await m?.heal();
  }, 120_000);

  it('--boot boots a member made with --fast (and keeps booting it); --fast with --boot is refused', async () => {
    expect((await cli(['down', 'tf-3'])).code).toBe(0);
    const up = await cli(['up', 'tf-3', '--boot']);
    expect(up.code, up.stderr).toBe(0);
    expect(events('tf', 'qemu_started').filter((e) => e.member === 'tf-3').at(-1)?.clone).toBeUndefined();
    expect(readFileSync(store.serialLogPath('tf', 'tf-3'), 'utf8')).toMatch(/FLEETBOX_READY tf-3 ip=\S+ uptime=/);
    expect(JSON.parse(readFileSync(join(store.memberDir('tf', 'tf-3'), 'config.json'), 'utf8'))).toMatchObject({ fast: false });
    const both = await cli(['up', 'tf-3', '--fast', '--boot']);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('fleetbox: --fast clones and --boot boots: give one of them');
  }, 120_000);

  it('by default (the library, no option) a member that can be cloned is: the template is reused, no new one made', async () => {
    const lib = await startCluster({ name: 'tl', members: 1, home: store.home });
    try {
      expect((await lib.members[0]?.exec('hostname'))?.stdout).toBe('tl-1\n');
      expect(events('tl', 'template_build')).toEqual([]);
      expect(events('tl', 'qemu_started')[0]?.clone).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await lib.destroy();
    }
  }, 120_000);

  it('--fast where a clone cannot carry the member (a disk, the host root) is one line and exit 2, nothing written', async () => {
    for (const [args, said] of [
      [['--disk', '64'], 'a disk'],
      [['--rootfs', 'host'], '--rootfs host'],
    ] as const) {
      const r = await cli(['up', 'tx', '--fast', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(`fleetbox: --fast clones the RAM guest without --disk, --share or --rootfs; tx-1 has ${said} (drop --fast)`);
    }
    expect(readdirSync(store.clustersDir)).not.toContain('tx');
  });

  it('a damaged template is refused and made again before anything is cloned from it', async () => {
    const key = String(events('tf', 'qemu_started')[0]?.clone);
    const state = join(templatesDir(store), key, 'state');
    const damagedInode = statSync(state).ino;
    truncateSync(state, 100);
    const up = await cli(['up', 'td', '--fast']);
    expect(up.code, up.stderr).toBe(0);
    // The images directory is shared by the test files running alongside: whichever start met the
    // damage first refused it and made the template again (td's holder, or another file's).
    const built = events('td', 'template_build');
    for (const e of built) expect(e).toMatchObject({ key, why: expect.stringContaining('state file is missing, truncated or damaged') });
    expect(statSync(state).ino).not.toBe(damagedInode);
    const manifest = JSON.parse(readFileSync(join(templatesDir(store), key, 'manifest.json'), 'utf8')) as { stateBytes: number; stateSha256: string };
    expect(statSync(state).size).toBe(manifest.stateBytes);
    expect(createHash('sha256').update(readFileSync(state)).digest('hex')).toBe(manifest.stateSha256);
    expect(events('td', 'qemu_started')[0]?.clone).toBe(key);
    expect((await cli(['rm', 'td', '--yes'])).code).toBe(0);
  }, 180_000);

  it('a template that cannot be made is remembered: the next start boots at once instead of failing the same way; when asked it tries again', async () => {
    const home = new Store(scratch()).ensure();
    const kernel = join(home.home, 'not-a-kernel');
    writeFileSync(kernel, 'garbage');
    const spec = { image: { ...(await ensureImage(store)), kernel }, accel: 'tcg' as const, cpus: 1, memoryMiB: 256 };
    const said: string[] = [];
    const say = (m: string) => void said.push(m);
    await expect(ensureTemplate(home, spec, memoryLogger(), say)).rejects.toThrow(/the template could not be made/);
    expect(said.filter((m) => m.startsWith('making a template'))).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(templatesDir(home), `${templateKey(spec)}.failed.json`), 'utf8'))).toMatchObject({ key: templateKey(spec), why: expect.stringContaining('could not be made') });
    // Not asked: no second build, one line saying why and how to try again.
    await expect(ensureTemplate(home, spec, memoryLogger(), say)).rejects.toThrow(/failed before .*'fleetbox up --fast' or 'fleetbox setup --yes'/);
    expect(said.filter((m) => m.startsWith('making a template'))).toHaveLength(1);
    // Asked (up --fast, setup): it builds again.
    await expect(ensureTemplate(home, spec, memoryLogger(), say, { retryFailed: true })).rejects.toThrow(/the template could not be made/);
    expect(said.filter((m) => m.startsWith('making a template'))).toHaveLength(2);
    expect(readdirSync(templatesDir(home)).filter((e) => e.startsWith('.build-'))).toEqual([]);
  }, 120_000);
});
