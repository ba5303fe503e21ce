import { existsSync, readdirSync } from 'node:fs';
import { readJson, writeJsonAtomic } from './atomic.js';
import type { Store } from './layout.js';
import { MemberConfigSchema, type MemberConfig } from './member-config.js';
import { z } from 'zod';
import { MemberStatusSchema } from '../protocol/schemas.js';

/** state.json: the wire status plus what reconcile needs to find the member's process again. */
export const MemberStateFileSchema = MemberStatusSchema.extend({
  processStartTime: z.string().optional(),
  holder: z.object({ pid: z.number().int(), startTime: z.string() }).optional(),
});
export type MemberStateFile = z.infer<typeof MemberStateFileSchema>;

export interface MemberRef {
  cluster: string;
  name: string;
}

const VALID = /^[a-z0-9][a-z0-9-]{0,62}$/;

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.isSymbolicLink() && VALID.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

/** Every cluster with a directory in the store; entries that are not valid names are ignored. */
export function listClusters(store: Store): string[] {
  return subdirs(store.clustersDir);
}

/** Every member known on disk (it has a config.json), sorted by cluster then name. */
export function listMembers(store: Store, cluster?: string): MemberRef[] {
  const clusters = cluster === undefined ? listClusters(store) : [cluster];
  return clusters.flatMap((c) =>
    subdirs(store.clusterDir(c))
      .filter((m) => existsSync(store.configPath(c, m)))
      .map((name) => ({ cluster: c, name })),
  );
}

export function readMemberConfig(store: Store, cluster: string, member: string): MemberConfig | undefined {
  return readJson(store.configPath(cluster, member), MemberConfigSchema);
}

export function writeMemberConfig(store: Store, config: MemberConfig): void {
  writeJsonAtomic(store.configPath(config.cluster, config.name), config);
}

/** The last state a holder wrote; a missing or unreadable file reads as undefined. */
export function readMemberState(store: Store, cluster: string, member: string): MemberStateFile | undefined {
  try {
    return readJson(store.statePath(cluster, member), MemberStateFileSchema);
  } catch {
    return undefined;
  }
}

export function writeMemberState(store: Store, cluster: string, status: MemberStateFile): void {
  writeJsonAtomic(store.statePath(cluster, status.name), status);
}

