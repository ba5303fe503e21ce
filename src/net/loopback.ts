import { FleetboxError } from '../protocol/errors.js';
import type { Logger } from '../host/logger.js';
import type { ClusterNetwork, MemberNetwork } from './types.js';
import { withLock } from '../store/lock.js';
import type { Store } from '../store/layout.js';
import { processStartTime } from '../host/proc.js';
import type { NetworkRecord } from '../store/network-record.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { claimSubnet } from './loopback-claims.js';
import { assignAddress, macFor, pickSubnet, readNetworkRecord, subnetsInUse, writeNetworkRecord } from './address-book.js';

/** 127.16.0.0 – 127.215.255.0: every /24 there routes to `lo` on Linux and needs no setup. */
const LOOPBACK_SLOTS = 200 * 256;
const loopbackSubnet = (slot: number) => `127.${16 + Math.floor(slot / 256)}.${slot % 256}`;

/** One store-wide lock for choosing subnets, so two new clusters never pick the same one. */
export function networkLockPath(store: Store): string {
  return join(store.runDir, 'network.lock');
}

/**
 * The process backend's network: each member gets its own loopback address in a /24 of its
 * cluster. Nothing is created on the host, so close() only drops the owner from the record;
 * the address book stays so a re-joining member gets its address back.
 */
export async function openLoopbackNetwork(store: Store, cluster: string, log: Logger): Promise<ClusterNetwork> {
  const owner = { pid: process.pid, startTime: processStartTime(process.pid) ?? '0' };
  // Loopback addresses are machine-wide: subnets are claimed host-wide (loopback-claims.ts); the
  // offset only spreads stores apart so that claims rarely collide in the first place.
  const offset = createHash('sha256').update(store.home).digest().readUInt32BE(0) % LOOPBACK_SLOTS;
  const claimant = { home: store.home, cluster };
  const record: NetworkRecord = await withLock(networkLockPath(store), async () => {
    let existing = readNetworkRecordSafe(store, cluster, log);
    // The recorded subnet is ours again unless another store took it over meanwhile (our record
    // was gone for a while); then the cluster moves, and its members get new addresses.
    const lost = existing?.kind === 'loopback' ? claimSubnet(existing.subnet, claimant) : undefined;
    if (existing && lost) {
      log.warn('loopback_subnet_moved', { cluster, subnet: existing.subnet, why: lost });
      existing = undefined;
    }
    const base: NetworkRecord = existing?.kind === 'loopback'
      ? existing
      : {
          cluster,
          kind: 'loopback',
          subnet: pickSubnet(cluster, LOOPBACK_SLOTS, (slot) => loopbackSubnet((slot + offset) % LOOPBACK_SLOTS), (s) =>
            subnetsInUse(store, cluster).has(s) ? 'used by another cluster' : claimSubnet(s, claimant),
          ),
          prefix: 8,
          gateway: null,
          namespace: null,
          addresses: {},
          owner,
          createdAt: new Date().toISOString(),
        };
    const next = { ...base, owner };
    writeNetworkRecord(store, next);
    return next;
  });
  log.info('network_open', { kind: 'loopback', subnet: record.subnet });
  return {
    cluster,
    async attach(member: string): Promise<MemberNetwork> {
      const ip = assignAddress(record, member, 1, 254);
      writeNetworkRecord(store, record);
      return { ip, prefix: 8, gateway: null, namespace: null, tap: null, mac: macFor(member) };
    },
    async detach(): Promise<void> {},
    block(blocks): Promise<void> {
      if (blocks.length === 0) return Promise.resolve();
      return Promise.reject(new FleetboxError('usage', `network faults need a cluster of VMs (--backend qemu): ${cluster} shares the host's loopback`));
    },
    async close(): Promise<void> {
      record.owner = null;
      writeNetworkRecord(store, record);
    },
  };
}

function readNetworkRecordSafe(store: Store, cluster: string, log: Logger): NetworkRecord | undefined {
  try {
    return readNetworkRecord(store, cluster);
  } catch (error) {
    // A corrupt record is rebuilt rather than fatal: addresses are re-assigned from scratch.
    log.warn('network_record_corrupt', { cluster, message: String(error) });
    return undefined;
  }
}
