import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { execOn, type ExecOptions } from './exec.js';
import { execTarget } from './target.js';

const quote = (path: string) => `'${path.replace(/'/g, `'\\''`)}'`;

/**
 * Copies a host file onto a member. The guest has no sftp server, so the bytes travel as base64
 * through the same SSH channel as exec (dropbear + busybox base64); a process member's "disk"
 * is the host's, so it is a plain copy.
 */
export async function copyToMember(store: Store, ref: MemberRef, localPath: string, remotePath: string, options: ExecOptions = {}): Promise<void> {
  const target = await execTarget(store, ref);
  let data: Buffer;
  try {
    data = readFileSync(localPath);
  } catch (error) {
    throw new FleetboxError('not_found', `cannot read ${localPath}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
  if (target.config.backend === 'process') {
    writeFileSync(remotePath, data);
    return;
  }
  const result = await execOn(target, `base64 -d > ${quote(remotePath)}`, { ...options, input: data.toString('base64') });
  if (result.exitCode !== 0) throw new FleetboxError('io', `copy to ${ref.name}:${remotePath} failed: ${result.stderr.trim()}`);
}

/** Copies a file from a member to the host. */
export async function copyFromMember(store: Store, ref: MemberRef, remotePath: string, localPath: string, options: ExecOptions = {}): Promise<void> {
  const target = await execTarget(store, ref);
  if (target.config.backend === 'process') {
    copyFileSync(remotePath, localPath);
    return;
  }
  const result = await execOn(target, `base64 < ${quote(remotePath)}`, options);
  if (result.exitCode !== 0) throw new FleetboxError('io', `copy from ${ref.name}:${remotePath} failed: ${result.stderr.trim()}`);
  writeFileSync(localPath, Buffer.from(result.stdout.replace(/\s+/g, ''), 'base64'));
}
