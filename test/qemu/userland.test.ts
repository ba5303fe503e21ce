import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupPids, memberCgroupPath } from '../../dist/host/cgroup.js';
import { startCluster } from '../../dist/lib/cluster.js';
import { Store } from '../../dist/store/layout.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { CLI, destroyStore, eventually, processesOf } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

/*
 * The user's own software in members: the host's root (read-only, secrets hidden, a writable
 * overlay per member, on its disk) and host folders shared into every member. One cluster is
 * booted for the file and shared by the tests, in order; the last ones break it on purpose.
 */

const run = promisify(execFile);
const skip = reportSkip('guest userland VM tests', cannotBootVms());
let store: Store;
const shared = mkdtempSync('/var/tmp/fbx-share-');
const readOnly = join(shared, 'app');
const writable = join(shared, 'out');

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home }, timeout: 180_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function sh(member: string, command: string): Promise<string> {
  const result = await cli(['ssh', member, '--', command]);
  expect(result.code, `${command}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** The member's processes by command name, from its cgroup. */
function processesIn(member: string): { pid: number; comm: string }[] {
  const cgroup = memberCgroupPath(store.home, member);
  if (!cgroup) return [];
  return cgroupPids(cgroup).map((pid) => {
    try {
      return { pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() };
    } catch {
      return { pid, comm: '' };
    }
  });
}

async function stateOf(member: string): Promise<{ state: string; error?: string }> {
  const ls = await cli(['ls', '--json']);
  return (JSON.parse(ls.stdout) as { name: string; state: string; error?: string }[]).find((m) => m.name === member) ?? { state: 'missing' };
}

beforeAll(async () => {
  if (skip) return;
  mkdirSync(readOnly);
  mkdirSync(writable);
  writeFileSync(join(readOnly, 'index.txt'), 'served from a host folder\n');
  store = new Store(vmStore().home).ensure();
  const up = await cli(['up', 'ul', '-n', '2', '--rootfs', 'host', '--disk', '64', '--share', `${readOnly}:/opt/app:ro`, '--share', `${writable}:/mnt/out`]);
  expect(up.code, up.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  if (!skip) await destroyStore(store);
  rmSync(shared, { recursive: true, force: true });
}, 60_000);

describe.skipIf(skip)('members on the host root with shared folders', () => {
  it("runs the host's installed software: a Python web server on one member serves a shared file to the other", async () => {
    expect(await sh('ul-1', 'python3 -c "import sys; print(sys.version_info[0])"')).toBe('3\n');
    await sh('ul-1', 'cd /opt/app && (setsid python3 -m http.server 8000 >/tmp/http.log 2>&1 &) ; sleep 0.1');
    const fetch = 'for i in $(seq 50); do python3 -c "import urllib.request as u; print(u.urlopen(\'http://ul-1:8000/index.txt\').read().decode(), end=\'\')" 2>/dev/null && exit 0; sleep 0.2; done; exit 1';
    expect(await sh('ul-2', fetch)).toBe('served from a host folder\n');
  });

  it("never shows the host's secrets, and its own identity files are the guest's", async () => {
    const shadow = await sh('ul-1', 'cat /etc/shadow');
    expect(shadow.split('\n').filter(Boolean).every((line) => line.split(':')[1] === '*'), shadow).toBe(true);
    expect(await sh('ul-1', 'awk -F: \'$3 >= 1000 && $3 != 65534\' /etc/passwd')).toBe('');
    expect(await sh('ul-1', 'ls -A /home; ls -A /root; ls /var/lib; cat /etc/ssh/ssh_host_*_key 2>/dev/null | wc -c')).toBe('.ssh\ndpkg\n0\n');
    // the store (keys, every member's files) and the host's temporary folders are not there
    expect(await sh('ul-1', `test -e ${store.home} || echo hidden; ls -A /tmp /var/tmp | grep -c fbx || true`)).toBe('hidden\n0\n');
    expect(await sh('ul-2', 'hostname; cat /etc/hostname')).toBe('ul-2\nul-2\n');
    // Each member its own machine id, not the host's.
    const ids = [await sh('ul-1', 'cat /etc/machine-id'), await sh('ul-2', 'cat /etc/machine-id')];
    expect(ids[0]).toMatch(/^[0-9a-f]{32}\n$/);
    expect(ids[1]).not.toBe(ids[0]);
    if (existsSync('/etc/machine-id')) expect(ids).not.toContain(readFileSync('/etc/machine-id', 'utf8'));
  });

  it('writes go to the member, never to the host; a read-only share is read-only at the host, a writable one reaches it', async () => {
    const marker = `/usr/local/fbx-${process.pid}`;
    expect(await sh('ul-1', `echo mine > ${marker} && cat ${marker}`)).toBe('mine\n');
    expect(existsSync(marker)).toBe(false);
    const ro = await cli(['ssh', 'ul-1', '--', 'echo x > /opt/app/new']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/Read-only file system/);
    expect(existsSync(join(readOnly, 'new'))).toBe(false);
    await sh('ul-2', 'echo from-ul-2 > /mnt/out/result');
    expect(readFileSync(join(writable, 'result'), 'utf8')).toBe('from-ul-2\n');
  });

  it('a re-joined member keeps its writes (overlay on its disk) and gets the same shares', async () => {
    await sh('ul-2', 'mkdir -p /var/lib/app && echo kept > /var/lib/app/state');
    expect((await cli(['down', 'ul-2'])).code).toBe(0);
    expect(processesIn('ul-2')).toEqual([]);
    const back = await cli(['up', 'ul-2']);
    expect(back.code, back.stderr).toBe(0);
    expect(await sh('ul-2', 'cat /var/lib/app/state; cat /opt/app/index.txt; grep " /opt/app " /proc/mounts | cut -d" " -f4 | cut -d, -f1')).toBe(
      'kept\nserved from a host folder\nro\n',
    );
  });

  it('a file server killed while the member runs: the member fails saying so, leaves nothing, and comes back with up', async () => {
    const server = processesIn('ul-2').find((p) => p.comm === 'virtiofsd');
    expect(server, JSON.stringify(processesIn('ul-2'))).toBeDefined();
    process.kill(server?.pid ?? 0, 'SIGKILL');
    expect(await eventually(() => processesIn('ul-2').length === 0, 15_000)).toBe(true);
    const failed = await stateOf('ul-2');
    expect(failed.state).toBe('error');
    const status = await cli(['status', 'ul-2']);
    expect(status.stdout).toMatch(/file server \(virtiofsd\) exited \(signal SIGKILL\)/);
    expect((await cli(['up', 'ul-2'])).code).toBe(0);
    expect(await sh('ul-2', 'cat /var/lib/app/state')).toBe('kept\n');
  });

  it('a file server killed during boot fails that boot with a clear error and leaves nothing behind', async () => {
    let killed = 0;
    let hunting = true;
    const hunt = (async () => {
      while (hunting && killed === 0) {
        const server = processesIn('ul-3').find((p) => p.comm === 'virtiofsd');
        if (server) {
          process.kill(server.pid, 'SIGKILL');
          killed = server.pid;
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const up = await cli(['up', 'ul-3']);
    hunting = false;
    await hunt;
    expect(killed).toBeGreaterThan(0);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/file server|virtiofs/);
    expect(await eventually(() => processesIn('ul-3').length === 0, 10_000)).toBe(true);
    expect((await stateOf('ul-3')).state).toBe('error');
    expect((await cli(['rm', 'ul-3', '--yes'])).code).toBe(0);
  });

  it('a shared folder that vanished: re-joining is refused in one line before anything starts', async () => {
    expect((await cli(['down', 'ul-1'])).code).toBe(0);
    renameSync(readOnly, `${readOnly}.moved`);
    try {
      const up = await cli(['up', 'ul-1']);
      expect(up.code).toBe(2);
      expect(up.stderr.trim().split('\n')).toEqual([`fleetbox: cannot share ${readOnly}: it does not exist (ENOENT); create it or fix the path`]);
      expect((await stateOf('ul-1')).state).toBe('stopped');
      expect(processesIn('ul-1')).toEqual([]);
    } finally {
      renameSync(`${readOnly}.moved`, readOnly);
    }
    expect((await cli(['up', 'ul-1'])).code).toBe(0);
  });

  it('the same from the library: startCluster with rootfs host and a read-only share, bound to this process', async () => {
    await using cluster = await startCluster({
      name: 'lib',
      members: 1,
      rootfs: 'host',
      shares: [{ host: readOnly, guest: '/srv/app', readOnly: true }],
      home: store.home,
    });
    const member = cluster.member('lib-1');
    expect(await member.exec('cat /srv/app/index.txt; python3 -c "print(6*7)"')).toMatchObject({ exitCode: 0, stdout: 'served from a host folder\n42\n' });
    expect((await member.exec('touch /srv/app/x')).exitCode).not.toBe(0);
  });

  it('a holder killed with -9 takes every QEMU and file server of its members along', async () => {
    const holder = liveHolder(store.pidfilePath('ul', 'ul-1'));
    expect(holder).toBeDefined();
    expect(processesIn('ul-1').map((p) => p.comm).sort()).toEqual(['qemu-system-x86', 'virtiofsd']);
    process.kill(holder?.pid ?? 0, 'SIGKILL');
    expect(await eventually(() => processesOf(store).length === 0, 10_000), `left: ${processesOf(store).join(', ')}`).toBe(true);
  });
});
