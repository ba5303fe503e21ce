import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../dist/store/layout.js';
import { listMembers, readMemberState } from '../dist/store/members.js';
import { removeMembers } from '../dist/control/remove.js';
import { isProcessAlive } from '../dist/host/proc.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));

/** A fresh store under /tmp with a short path (unix socket paths are limited to 107 bytes). */
export function tempStore(): Store {
  return new Store(mkdtempSync('/tmp/fbx-t-')).ensure();
}

/** Every process whose environment or argv mentions this store: holders and members. */
export function processesOf(store: Store): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (env.includes(store.home)) pids.push(Number(entry));
    } catch {
      // gone or not ours to read
    }
  }
  return pids;
}

/** Waits (bounded) until `check` holds; returns whether it did. */
export async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** PIDs recorded for members of the store (their own processes), alive or not. */
export function memberPids(store: Store): number[] {
  return listMembers(store)
    .map((ref) => readMemberState(store, ref.cluster, ref.name)?.pid)
    .filter((pid): pid is number => typeof pid === 'number');
}

export function alive(pids: number[]): number[] {
  return pids.filter(isProcessAlive);
}

/** Removes everything the store holds and asserts nothing of it keeps running. */
export async function destroyStore(store: Store): Promise<void> {
  await removeMembers(store, listMembers(store));
  const left = await eventually(() => processesOf(store).length === 0, 10_000);
  const pids = processesOf(store);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  rmSync(store.home, { recursive: true, force: true });
  if (!left) throw new Error(`processes left behind by the test: ${pids.join(', ')}`);
}

/** Every entry under `root` as one line: path, kind, permission bits, and content or link text. */
export function describeTree(root: string): string[] {
  const lines: string[] = [`. dir ${(statSync(root).mode & 0o7777).toString(8)}`];
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = `${prefix}${name}`;
      const stats = lstatSync(path);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isSymbolicLink()) lines.push(`${rel} link -> ${readlinkSync(path)}`);
      else if (stats.isDirectory()) {
        lines.push(`${rel} dir ${mode}`);
        walk(path, `${rel}/`);
      } else lines.push(`${rel} file ${mode} ${readFileSync(path, 'utf8')}`);
    }
  };
  walk(root, '');
  return lines;
}
