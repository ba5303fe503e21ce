import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import type { Logger } from '../host/logger.js';
import type { ClusterNetwork, MemberNetwork, NetworkPlan } from './types.js';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { NetworkRecord } from '../store/network-record.js';
import { isSameProcess, processStartTime } from '../host/proc.js';
import { assignAddress, macFor, pickSubnet, readNetworkRecord, subnetsInUse, writeNetworkRecord } from './address-book.js';
import { hostRoutes, overlappingRoute } from './host-routes.js';
import { startClusterDns, type ClusterDns } from './dns.js';
import { ip, IpError } from './ip-command.js';
import { applyBlocks, type Block } from './blocks.js';

const BRIDGE = 'br0';
const PREFIX = 24;
/** Candidate /24s: 10.64.0.0 – 10.127.255.0, away from the 10.0.x/10.1.x that VPNs and clouds favour. */
const SUBNET_SLOTS = 64 * 256;
const candidateSubnet = (slot: number) => `10.${64 + (slot >> 8)}.${slot & 255}`;

/**
 * The cluster's namespace name. The store's home is part of the hash: two installations (two
 * test runs with their own FLEETBOX_HOME) may both have a cluster "web", and one must never
 * tear down the other's live network. 8 hex digits keep names short and readable.
 */
export function namespaceFor(store: Store, cluster: string): string {
  return `fbx-${createHash('sha256').update(`${store.home}\0${cluster}`).digest('hex').slice(0, 8)}`;
}

/** Tap device of a member inside its cluster's namespace (interface names are at most 15 bytes). */
export function tapFor(member: string): string {
  return `tap-${createHash('sha256').update(member).digest('hex').slice(0, 10)}`;
}

export function namespaceExists(namespace: string): boolean {
  return existsSync(`/run/netns/${namespace}`);
}

/** Deletes a namespace (its bridge and taps go with it) and verifies it is gone. */
export async function deleteNamespace(namespace: string): Promise<void> {
  if (namespaceExists(namespace)) {
    try {
      await ip(['netns', 'delete', namespace]);
    } catch (error) {
      if (namespaceExists(namespace)) throw error;
    }
  }
  if (namespaceExists(namespace)) {
    throw new FleetboxError('io', `network namespace ${namespace} is still there after deleting it; remove it with: ip netns delete ${namespace}`);
  }
}

/** A locally administered unicast MAC for the bridge of namespace `ns` (stable per cluster). */
function bridgeMac(ns: string): string {
  const h = createHash('sha256').update(`bridge\0${ns}`).digest();
  return ['02', 'fb', ...[...h.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

async function createNamespace(record: NetworkRecord): Promise<void> {
  const ns = record.namespace ?? '';
  await ip(['netns', 'add', ns]);
  // One `ip` process for the rest: each spawn costs ~5 ms on a busy 2-core machine.
  await ip(
    ['-n', ns, '-b', '-'],
    [
      'link set lo up',
      // An address of its own, set explicitly: a bridge without one takes the lowest MAC of its
      // ports and changes it when that port leaves, and the members' ARP entries for the gateway
      // (their DNS) then point nowhere until they expire (seconds of "bad address" after a re-join).
      `link add ${BRIDGE} address ${bridgeMac(ns)} type bridge`,
      `addr add ${record.gateway}/${PREFIX} dev ${BRIDGE}`,
      `link set ${BRIDGE} up`,
    ].join('\n') + '\n',
  );
}

async function pickFreeSubnet(store: Store, cluster: string): Promise<string> {
  const others = subnetsInUse(store, cluster);
  // Members live only inside the namespace, but a subnet the host also routes would make
  // `fleetbox exec` and forwards ambiguous for users reading addresses: avoid both.
  const routes = await hostRoutes();
  return pickSubnet(cluster, SUBNET_SLOTS, candidateSubnet, (subnet) => {
    if (others.has(subnet)) return 'used by another cluster';
    const route = overlappingRoute(subnet, routes);
    return route === undefined ? undefined : `overlaps host route ${route}`;
  });
}

function readRecordOrNone(store: Store, cluster: string, log: Logger): NetworkRecord | undefined {
  try {
    return readNetworkRecord(store, cluster);
  } catch (error) {
    log.warn('network_record_unreadable', { cluster, message: (error as Error).message });
    return undefined;
  }
}

/**
 * Opens the cluster's network: a namespace with a bridge whose address is the gateway. The
 * record is written (owned by this process) before anything is created, so a crash at any point
 * leaves a record that reconcile can act on. An existing record keeps its subnet and address
 * book, so members that come back get their old addresses.
 */
export async function openBridgeNetwork(store: Store, cluster: string, log: Logger, plan?: NetworkPlan): Promise<ClusterNetwork> {
  const startTime = processStartTime(process.pid);
  if (startTime === null) throw new FleetboxError('internal', 'cannot read this process start time from /proc');
  const me = { pid: process.pid, startTime };
  const previous = readRecordOrNone(store, cluster, log);
  const ownedByMe = previous?.owner?.pid === me.pid && previous.owner.startTime === me.startTime;
  if (previous?.owner && !ownedByMe && isSameProcess(previous.owner.pid, previous.owner.startTime)) {
    throw new FleetboxError('busy', `the network of cluster ${cluster} belongs to the live process ${previous.owner.pid}; stop that holder first ('fleetbox down ${cluster}')`);
  }
  let record: NetworkRecord;
  // A fork's plan wins over a record of another subnet (a leftover of an earlier cluster of
  // this name): its saved guests have the plan's addresses.
  if (previous?.kind === 'bridge' && previous.namespace && (!plan || previous.subnet === plan.subnet)) {
    record = { ...previous, addresses: { ...previous.addresses, ...plan?.addresses }, owner: me };
  } else {
    // A fork's subnet is its snapshot's, in use by the cluster it was taken of too: the two never
    // meet (each lives in its own namespace), and its guests already have their addresses.
    const subnet = plan?.subnet ?? (await pickFreeSubnet(store, cluster));
    record = {
      cluster,
      kind: 'bridge',
      subnet,
      prefix: PREFIX,
      gateway: `${subnet}.1`,
      namespace: namespaceFor(store, cluster),
      addresses: { ...plan?.addresses },
      owner: me,
      createdAt: new Date().toISOString(),
    };
  }
  const namespace = record.namespace ?? '';
  mkdirSync(store.clusterDir(cluster), { recursive: true, mode: 0o700 });
  writeNetworkRecord(store, record);
  // A namespace this process did not make is a dead holder's leftover, with stale taps: start clean.
  if (namespaceExists(namespace) && !ownedByMe) {
    log.warn('network_stale_namespace', { cluster, namespace });
    await deleteNamespace(namespace);
  }
  if (!namespaceExists(namespace)) await createNamespace(record);
  const dns = await startClusterDns(store, cluster, namespace, record.gateway ?? '', record.addresses, log);
  log.info('network_open', { cluster, namespace, subnet: `${record.subnet}.0/${PREFIX}` });
  return new BridgeNetwork(store, record, log, dns);
}

class BridgeNetwork implements ClusterNetwork {
  /** attach/detach/close run one at a time: each is a read-modify-write of the record and the namespace. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly store: Store,
    private record: NetworkRecord,
    private readonly log: Logger,
    private dns: ClusterDns,
  ) {}

  get cluster(): string {
    return this.record.cluster;
  }

  private get namespace(): string {
    return this.record.namespace ?? '';
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  attach(member: string): Promise<MemberNetwork> {
    return this.serial(async () => {
      if (this.closed) throw new FleetboxError('not_running', `the network of cluster ${this.cluster} is closed`);
      const address = assignAddress(this.record, member);
      writeNetworkRecord(this.store, this.record);
      if (!namespaceExists(this.namespace)) {
        // Someone deleted it under us (ip netns delete, a reboot of /run): rebuild from the record.
        this.log.warn('network_rebuilt', { cluster: this.cluster, namespace: this.namespace });
        await this.dns.stop();
        await createNamespace(this.record);
        this.dns = await startClusterDns(this.store, this.cluster, this.namespace, this.record.gateway ?? '', this.record.addresses, this.log);
      }
      // Every member resolves every other by name, including members that join later.
      this.dns.update(this.record.addresses);
      const tap = tapFor(member);
      const add = `tuntap add dev ${tap} mode tap\nlink set ${tap} master ${BRIDGE} up\n`;
      try {
        await ip(['-n', this.namespace, '-b', '-'], add);
      } catch (error) {
        if (!(error instanceof IpError) || !/exists|busy/i.test(error.said)) throw error;
        // A tap left by this member's previous run in this holder: replace it.
        await ip(['-n', this.namespace, 'link', 'del', tap]);
        await ip(['-n', this.namespace, '-b', '-'], add);
      }
      return { ip: address, prefix: PREFIX, gateway: this.record.gateway, namespace: this.namespace, tap, mac: macFor(member) };
    });
  }

  detach(member: string): Promise<void> {
    return this.serial(async () => {
      if (!namespaceExists(this.namespace)) return;
      try {
        await ip(['-n', this.namespace, 'link', 'del', tapFor(member)]);
      } catch (error) {
        if (!(error instanceof IpError) || !/cannot find|does not exist/i.test(error.said)) throw error;
      }
    });
  }

  block(blocks: readonly Block[]): Promise<void> {
    return this.serial(() => applyBlocks(this.namespace, blocks));
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      // Nothing of ours may keep running in the namespace once its name is gone.
      await this.dns.stop();
      await deleteNamespace(this.namespace);
      // The record stays, without an owner: a member that comes back later gets its old address.
      writeNetworkRecord(this.store, { ...this.record, owner: null });
      this.log.info('network_closed', { cluster: this.cluster, namespace: this.namespace });
    });
  }
}
