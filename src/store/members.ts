import { mkdirSync } from 'node:fs';
import { readJson, writeJsonAtomic } from './atomic.js';
import type { Store } from './layout.js';

export { listClusters, listMembers, type MemberRef } from './listing.js';
import { MemberConfigSchema, type MemberConfig } from './member-config.js';
import { z } from 'zod';
import { MemberStatusSchema } from '../protocol/schemas.js';

/** state.json: the wire status plus what reconcile needs to find the member's process again. */
export const MemberStateFileSchema = MemberStatusSchema.extend({
  processStartTime: z.string().optional(),
  holder: z.object({ pid: z.number().int(), startTime: z.string() }).optional(),
});
export type MemberStateFile = z.infer<typeof MemberStateFileSchema>;

export function readMemberConfig(store: Store, cluster: string, member: string): MemberConfig | undefined {
  return readJson(store.configPath(cluster, member), MemberConfigSchema);
}

/** Writes config.json, creating the member's directory (0700) for a member never seen before. */
export function writeMemberConfig(store: Store, config: MemberConfig): void {
  mkdirSync(store.memberDir(config.cluster, config.name), { recursive: true, mode: 0o700 });
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

/**
 * Rewritten at every state change of every member (four times a boot): not fsynced, which made
 * a hundred members starting spend a second in fsync. A holder crash cannot tear it; a power
 * cut can, and readMemberState then reads it as missing (nothing runs after a power cut anyway).
 */
export function writeMemberState(store: Store, cluster: string, status: MemberStateFile): void {
  writeJsonAtomic(store.statePath(cluster, status.name), status, { durable: false });
}

