import { execFile, execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../dist/store/layout.js';
import { readNetworkRecord } from '../../dist/net/address-book.js';
import { liveHolder } from '../../dist/store/pidfile.js';
import { CLI, destroyStore, eventually, processesOf } from '../helpers.js';
import { cannotBootVms, reportSkip, vmStore } from './harness.js';

const run = promisify(execFile);
const skip = reportSkip('cluster-level VM tests', cannotBootVms());
let store: Store | undefined;

afterEach(async () => {
  if (store) await destroyStore(store);
  store = undefined;
});

function fresh(): Store {
  store = new Store(vmStore().home).ensure();
  return store;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store?.home ?? '', ...env }, timeout: 120_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe.skipIf(skip)('real VM clusters from the CLI', () => {
  it('three members on one network resolve each other by name; a re-joined member keeps its IP and is found by the others', async () => {
    fresh();
    const up = await cli(['up', 'db', '-n', '3', '--json']);
    expect(up.code, up.stderr).toBe(0);
    const members = JSON.parse(up.stdout) as { name: string; ip: string; state: string }[];
    expect(members.map((m) => m.state)).toEqual(['running', 'running', 'running']);
    const subnets = new Set(members.map((m) => m.ip.split('.').slice(0, 3).join('.')));
    expect(subnets.size).toBe(1);
    // What QEMU creates itself is private like the rest of the store.
    const s = store as Store;
    const modes = [s.qmpSocketPath('db-1'), s.serialLogPath('db', 'db-1')].map((p) => (statSync(p).mode & 0o777).toString(8));
    expect(modes).toEqual(['700', '600']);

    const uname = await cli(['ssh', 'db-1', '--', 'uname -s; exit 3']);
    expect(uname).toMatchObject({ code: 3, stdout: 'Linux\n' });
    expect((await cli(['ssh', 'db-1', '--', 'ping -c1 -W2 db-2'])).code).toBe(0);

    const ipOf2 = members[1]?.ip;
    expect((await cli(['down', 'db-2'])).code).toBe(0);
    const back = await cli(['up', 'db-2', '--json']);
    expect(back.code, back.stderr).toBe(0);
    expect((JSON.parse(back.stdout) as { ip: string }[])[0]?.ip).toBe(ipOf2);
    const resolved = await cli(['ssh', 'db-3', '--', 'ping -c1 -W2 db-2 | head -1']);
    expect(resolved.stdout).toContain(`(${ipOf2})`);

    // the host reaches members only through the cluster's namespace or a holder forward
    const inside = await cli(['exec', 'db', '--', 'busybox', 'ping', '-c1', '-W2', ipOf2 ?? '']);
    expect(inside.code).toBe(0);
    const forward = await cli(['forward', 'db-1', '22']);
    expect(forward.stdout.trim()).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('kill -9 of the holder: the next ls reconciles, no qemu, namespace or owner is left, and up starts fresh', async () => {
    const s = fresh();
    expect((await cli(['up', 'crash', '-n', '2'])).code).toBe(0);
    const holder = liveHolder(s.pidfilePath('crash', 'crash-1'))?.pid as number;
    const ns = readNetworkRecord(s, 'crash')?.namespace ?? '';
    expect(namespaces()).toContain(ns);
    process.kill(holder, 'SIGKILL');
    // qemu dies with its holder (pdeathsig): asserted on /proc
    expect(await eventually(() => processesOf(s).length === 0, 5_000)).toBe(true);
    const ls = await cli(['ls', '--json']);
    expect((JSON.parse(ls.stdout) as { state: string }[]).map((m) => m.state)).toEqual(['stopped', 'stopped']);
    expect(namespaces()).not.toContain(ns);
    expect(readNetworkRecord(s, 'crash')?.owner).toBeNull();
    expect((await cli(['up', 'crash'])).code).toBe(0);
  });

  it('two clusters cannot reach each other', async () => {
    fresh();
    const a = JSON.parse((await cli(['up', 'iso-a', '--json'])).stdout) as { ip: string }[];
    const b = JSON.parse((await cli(['up', 'iso-b', '--json'])).stdout) as { ip: string }[];
    expect(a[0]?.ip.split('.').slice(0, 3)).not.toEqual(b[0]?.ip.split('.').slice(0, 3));
    const across = await cli(['ssh', 'iso-a-1', '--', `ping -c1 -W1 ${b[0]?.ip}`]);
    expect(across.code).not.toBe(0);
    expect((await cli(['ssh', 'iso-a-1', '--', 'ping -c1 -W1 iso-b-1'])).code).not.toBe(0);
  });

  it('missing prerequisites: up fails at once with the setup line and leaves nothing running', async () => {
    const s = fresh();
    const result = await cli(['up', 'bare'], { FLEETBOX_TOOLS_PATH: '/nonexistent' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').pop()).toMatch(/^fleetbox: .*not installed; run: fleetbox setup --yes$/);
    expect(await eventually(() => processesOf(s).length === 0)).toBe(true);
  });

  it('down during boot abandons the boot and leaves no VM', async () => {
    const s = fresh();
    const booting = cli(['up', 'abandon']);
    expect(await eventually(() => liveHolder(s.pidfilePath('abandon', 'abandon-1')) !== undefined, 10_000)).toBe(true);
    expect((await cli(['down', 'abandon'])).code).toBe(0);
    expect((await booting).code).not.toBe(0);
    expect(await eventually(() => processesOf(s).length === 0, 5_000)).toBe(true);
  });
});
