import { existsSync } from 'node:fs';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { listClusters, listMembers, type MemberRef } from '../store/listing.js';
import { clusterOf, validateName } from '../store/names.js';

/**
 * Turns command-line names into members: a cluster name means all its members, a member name
 * means that member. Unknown names are an error naming them, so nothing half-happens.
 */
export function resolveTargets(store: Store, names: string[]): MemberRef[] {
  const found = new Map<string, MemberRef>();
  const unknown: string[] = [];
  for (const name of names) {
    validateName(name);
    const clusterMembers = listClusters(store).includes(name) ? listMembers(store, name) : [];
    const cluster = clusterOf(name);
    const asMember = existsSync(store.configPath(cluster, name)) ? [{ cluster, name }] : [];
    const refs = clusterMembers.length > 0 ? clusterMembers : asMember;
    if (refs.length === 0) unknown.push(name);
    for (const ref of refs) found.set(ref.name, ref);
  }
  if (unknown.length > 0) {
    throw new FleetboxError('not_found', `no member or cluster named ${unknown.join(', ')}; 'fleetbox ls' lists them`);
  }
  return [...found.values()];
}

/**
 * The one member a command that works on a single member (ssh, logs, forward, cp) was given;
 * a cluster name is a usage error that says what to give instead (`otherwise`, e.g. "or pass --all").
 */
export function resolveOneMember(store: Store, name: string, otherwise = ''): MemberRef {
  const [ref, ...more] = resolveTargets(store, [name]);
  if (!ref || more.length > 0) {
    throw new FleetboxError('usage', `${name} is a cluster; name one member, e.g. ${ref?.name ?? `${name}-1`}${otherwise ? ` ${otherwise}` : ''}`);
  }
  return ref;
}
