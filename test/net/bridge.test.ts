import { execFileSync } from 'node:child_process';
import { reconcileNetwork } from '../../dist/store/reconcile.js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterNetwork } from '../../dist/net/types.js';
import { macFor, readNetworkRecord, writeNetworkRecord } from '../../dist/net/address-book.js';
import { namespaceExists, namespaceFor, openBridgeNetwork, tapFor } from '../../dist/net/bridge.js';
import { overlappingRoute } from '../../dist/net/host-routes.js';
import { Store } from '../../dist/store/layout.js';
import { processStartTime } from '../../dist/host/proc.js';
import { cannotUseNamespaces, memoryLogger, reportSkip } from '../qemu/harness.js';

function links(namespace: string): { ifname: string; master?: string; operstate: string; addr_info?: { local: string; prefixlen: number }[] }[] {
  return JSON.parse(execFileSync('ip', ['-n', namespace, '-j', 'addr', 'show'], { encoding: 'utf8' })) as ReturnType<typeof links>;
}

/** A PID and start time of a process that has exited: an owner that is certainly dead. */
function deadOwner(): { pid: number; startTime: string } {
  const pid = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
  return { pid, startTime: '1' };
}

describe('host route overlap', () => {
  it('finds routes that overlap a /24 and ignores the rest', () => {
    expect(overlappingRoute('10.64.3', ['192.0.2.0/24', '10.0.0.0/8'])).toBe('10.0.0.0/8');
    expect(overlappingRoute('10.64.3', ['10.64.3.7'])).toBe('10.64.3.7');
    expect(overlappingRoute('10.64.3', ['10.64.4.0/24', '172.16.0.0/12'])).toBeUndefined();
  });
});

const skip = reportSkip('bridge network tests', cannotUseNamespaces());

describe.skipIf(skip)('bridge network', () => {
  let store: Store;
  const open: ClusterNetwork[] = [];
  const namespaces: string[] = [];

  const fresh = () => {
    store = new Store(mkdtempSync('/tmp/fbx-n-')).ensure();
    return store;
  };

  afterEach(async () => {
    for (const network of open.splice(0)) await network.close().catch(() => undefined);
    for (const ns of namespaces.splice(0)) if (namespaceExists(ns)) execFileSync('ip', ['netns', 'delete', ns]);
    rmSync(store.home, { recursive: true, force: true });
  });

  it('creates a namespace with a bridge at the gateway, taps per member, and stable addresses', async () => {
    fresh();
    const log = memoryLogger();
    const network = await openBridgeNetwork(store, 'web', log);
    open.push(network);
    const record = readNetworkRecord(store, 'web');
    expect(record).toMatchObject({ kind: 'bridge', prefix: 24, namespace: namespaceFor(store, 'web'), owner: { pid: process.pid } });
    const ns = record?.namespace ?? '';
    namespaces.push(ns);
    expect(namespaceExists(ns)).toBe(true);
    const br0 = links(ns).find((l) => l.ifname === 'br0');
    expect(br0?.addr_info?.[0]).toMatchObject({ local: `${record?.subnet}.1`, prefixlen: 24 });
    expect(links(ns).find((l) => l.ifname === 'lo')?.operstate).toBe('UNKNOWN'); // lo is up (no carrier state)

    const [a, b] = await Promise.all([network.attach('web-1'), network.attach('web-2')]);
    expect(a).toMatchObject({ prefix: 24, gateway: `${record?.subnet}.1`, namespace: ns, tap: tapFor('web-1'), mac: macFor('web-1') });
    expect(new Set([a.ip, b.ip]).size).toBe(2);
    expect(links(ns).find((l) => l.ifname === a.tap)?.master).toBe('br0');

    await network.detach('web-1');
    expect(links(ns).some((l) => l.ifname === a.tap)).toBe(false);
    expect((await network.attach('web-1')).ip).toBe(a.ip); // a re-join keeps its address
    // The host itself got nothing: no bridge, no taps outside the namespace.
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(a.tap ?? 'x');

    await network.close();
    open.length = 0;
    expect(namespaceExists(ns)).toBe(false);
    expect(readNetworkRecord(store, 'web')?.owner).toBeNull(); // the address book outlives the network
  });

  it('gives clusters of one store different subnets and keeps a cluster on its recorded one', async () => {
    fresh();
    const log = memoryLogger();
    const one = await openBridgeNetwork(store, 'one', log);
    open.push(one);
    const two = await openBridgeNetwork(store, 'two', log);
    open.push(two);
    const subnetOne = readNetworkRecord(store, 'one')?.subnet;
    expect(subnetOne).toMatch(/^10\.\d+\.\d+$/);
    expect(readNetworkRecord(store, 'two')?.subnet).not.toBe(subnetOne);
    const ip = (await one.attach('one-1')).ip;

    // The same process opening again (a holder's re-open) reuses record and namespace.
    const again = await openBridgeNetwork(store, 'one', log);
    expect(readNetworkRecord(store, 'one')?.subnet).toBe(subnetOne);
    expect((await again.attach('one-1')).ip).toBe(ip);
  });

  it('rebuilds a namespace deleted under it, and refuses a network a live process owns', async () => {
    fresh();
    const log = memoryLogger();
    const network = await openBridgeNetwork(store, 'db', log);
    open.push(network);
    const ns = namespaceFor(store, 'db');
    execFileSync('ip', ['netns', 'delete', ns]);
    const member = await network.attach('db-1');
    expect(namespaceExists(ns)).toBe(true);
    expect(links(ns).some((l) => l.ifname === member.tap)).toBe(true);
    expect(log.lines.some((l) => l.event === 'network_rebuilt')).toBe(true);

    // Owned by another live process (PID 1 stands in for a second holder).
    const record = readNetworkRecord(store, 'db');
    if (!record) throw new Error('no record');
    writeNetworkRecord(store, { ...record, owner: { pid: 1, startTime: processStartTime(1) ?? '' } });
    await expect(openBridgeNetwork(store, 'db', log)).rejects.toMatchObject({ code: 'busy' });
    writeNetworkRecord(store, record);
  });

  it('writes the record before creating the namespace, and reconcile removes a dead owner’s network', async () => {
    fresh();
    mkdirSync(store.clusterDir('gone'), { recursive: true });
    const network = await openBridgeNetwork(store, 'gone', memoryLogger());
    await network.attach('gone-1');
    const record = readNetworkRecord(store, 'gone');
    if (!record) throw new Error('no record');
    const ns = record.namespace ?? '';
    namespaces.push(ns);
    expect(reconcileNetwork(store, 'gone')).toBe('none'); // we are alive

    writeNetworkRecord(store, { ...record, owner: deadOwner() });
    expect(reconcileNetwork(store, 'gone')).toBe('released');
    expect(namespaceExists(ns)).toBe(false);
    expect(readNetworkRecord(store, 'gone')?.owner).toBeNull(); // kept for re-joins, owned by nobody

    // A crash right after the write-ahead record: the record names a namespace that never
    // appeared; a new holder reuses the record's subnet and address book and builds it.
    writeNetworkRecord(store, { ...record, owner: deadOwner() });
    const reopened = await openBridgeNetwork(store, 'gone', memoryLogger());
    open.push(reopened);
    expect(namespaceExists(ns)).toBe(true);
    expect((await reopened.attach('gone-1')).ip).toBe(record.addresses['gone-1']);
  });

  it('names namespaces per store, so two installations never share one', () => {
    fresh();
    const other = new Store('/tmp/fbx-other-home');
    expect(namespaceFor(store, 'web')).toMatch(/^fbx-[0-9a-f]{8}$/);
    expect(namespaceFor(store, 'web')).not.toBe(namespaceFor(other, 'web'));
  });
});
