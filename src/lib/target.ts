import { getStatus } from '../control/status.js';
import { readNetworkRecord } from '../net/address-book.js';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { readMemberConfig, type MemberRef } from '../store/members.js';
import type { MemberConfig } from '../store/member-config.js';
import type { NetworkRecord } from '../store/network-record.js';

/** A running member as exec and copy reach it. */
export interface ExecTarget {
  store: Store;
  config: MemberConfig;
  ip: string;
  network: NetworkRecord | undefined;
}

/** What a request to a member's holder needs: the store and the member's name (its socket). */
export interface HolderTarget {
  store: Store;
  config: Pick<MemberConfig, 'name'>;
}

/** What it takes to run commands on a member; `not_running` unless its holder says it runs. */
export async function execTarget(store: Store, ref: MemberRef): Promise<ExecTarget> {
  const view = await getStatus(store, ref);
  if (view.state !== 'running' || !view.ip) {
    throw new FleetboxError('not_running', `${ref.name} is ${view.state}; start it first ('fleetbox up ${ref.name}')`);
  }
  const config = readMemberConfig(store, ref.cluster, ref.name);
  if (!config) throw new FleetboxError('not_found', `${ref.name} has no config any more`);
  return { store, config, ip: view.ip, network: readNetworkRecord(store, ref.cluster) };
}
