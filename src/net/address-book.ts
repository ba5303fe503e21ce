import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readJson, writeJsonAtomic } from '../store/atomic.js';
import type { Store } from '../store/layout.js';
import { listClusters } from '../store/members.js';
import { FIRST_MEMBER_HOST, LAST_MEMBER_HOST, NetworkRecordSchema, type NetworkRecord } from '../store/network-record.js';
import { FleetboxError } from '../protocol/errors.js';

export function readNetworkRecord(store: Store, cluster: string): NetworkRecord | undefined {
  return readJson(store.networkPath(cluster), NetworkRecordSchema);
}

export function writeNetworkRecord(store: Store, record: NetworkRecord): void {
  writeJsonAtomic(store.networkPath(record.cluster), record);
}

/** Deterministic locally administered MAC (52:54:00 is QEMU's prefix) from a member name. */
export function macFor(member: string): string {
  const h = createHash('sha256').update(member).digest();
  return `52:54:00:${[h[0], h[1], h[2]].map((b) => (b ?? 0).toString(16).padStart(2, '0')).join(':')}`;
}

/** Subnets (first three octets) recorded by every other cluster in this store. */
export function subnetsInUse(store: Store, exceptCluster: string): Set<string> {
  const used = new Set<string>();
  for (const cluster of listClusters(store)) {
    if (cluster === exceptCluster || !existsSync(store.networkPath(cluster))) continue;
    try {
      const record = readNetworkRecord(store, cluster);
      if (record) used.add(record.subnet);
    } catch {
      // a corrupt record of another cluster must not block this one; reconcile reports it
    }
  }
  return used;
}

/**
 * Picks a /24 for `cluster` from `candidates(i)`: starts at a slot derived from the cluster's name
 * so the same cluster tends to get the same subnet, skips every subnet in `taken`.
 */
export function pickSubnet(
  cluster: string,
  slots: number,
  candidate: (slot: number) => string,
  taken: (subnet: string) => string | undefined,
): string {
  const start = createHash('sha256').update(cluster).digest().readUInt32BE(0) % slots;
  const clashes: string[] = [];
  for (let i = 0; i < slots; i++) {
    const subnet = candidate((start + i) % slots);
    const why = taken(subnet);
    if (why === undefined) return subnet;
    if (clashes.length < 3) clashes.push(`${subnet}.0/24 (${why})`);
  }
  throw new FleetboxError(
    'busy',
    `no free /24 left for cluster ${cluster}: all ${slots} candidates are taken, e.g. ${clashes.join(', ')}; remove unused clusters with 'fleetbox rm'`,
  );
}

/**
 * Gives `member` an address in `record`: the recorded one if it has one (re-join keeps its IP),
 * else the lowest free host number from `firstHost`. Mutates and returns the record.
 */
export function assignAddress(record: NetworkRecord, member: string, firstHost = FIRST_MEMBER_HOST, lastHost = LAST_MEMBER_HOST): string {
  const existing = record.addresses[member];
  if (existing) return existing;
  const used = new Set(Object.values(record.addresses));
  for (let host = firstHost; host <= lastHost; host++) {
    const ip = `${record.subnet}.${host}`;
    if (!used.has(ip) && ip !== record.gateway) {
      record.addresses[member] = ip;
      return ip;
    }
  }
  throw new FleetboxError(
    'busy',
    `cluster ${record.cluster} has no free address left in ${record.subnet}.0/24; remove members with 'fleetbox rm'`,
  );
}
