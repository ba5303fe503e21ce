import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mount, destroyCgroupSync, memberCgroupName } from '../../dist/host/cgroup.js';
import type { Store } from '../../dist/store/layout.js';

/**
 * What "nothing is left behind" means, checked from the outside (/proc, the store's tree, the
 * kernel's namespaces and links) and never on fleetbox's own word.
 */
export interface Leftovers {
  /** Processes whose environment or argv names the store: holders, members, qemu. */
  processes: { pid: number; comm: string }[];
  /** Anything under run/: sockets, control sockets, lock directories. */
  run: string[];
  /** Anything under clusters/ (pidfiles, state, network records) and holder logs under logs/. */
  files: string[];
  /** Network namespaces and links (bridges, taps) recorded by this store that still exist. */
  network: string[];
  /** Member cgroups of this store (process members are contained in one each). */
  cgroups: string[];
}

/** How many scans ran in this worker and how many found something; the report prints both. */
export const leakStats = { scans: 0, leaks: 0 };

/** fbx-… names (namespaces, bridges, taps) this store's network records ever mentioned. */
const knownNetworkNames = new Map<string, Set<string>>();

function collectNames(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    if (/^fbx-[\w.-]+$/.test(value)) into.add(value);
  } else if (Array.isArray(value)) {
    value.forEach((v) => collectNames(v, into));
  } else if (value !== null && typeof value === 'object') {
    Object.values(value).forEach((v) => collectNames(v, into));
  }
}

/**
 * Remembers every fbx-… name in the store's network records right now. `rm` deletes the records
 * with the network, so the suite takes note while they exist (its CLI wrapper does, after every
 * command) and checks the names are gone at the end.
 */
export function noteNetworks(store: Store): void {
  const names = knownNetworkNames.get(store.home) ?? new Set<string>();
  knownNetworkNames.set(store.home, names);
  let clusters: string[];
  try {
    clusters = readdirSync(store.clustersDir);
  } catch {
    return;
  }
  for (const cluster of clusters) {
    try {
      collectNames(JSON.parse(readFileSync(join(store.clustersDir, cluster, 'network.json'), 'utf8')), names);
    } catch {
      // no record, or one being replaced right now: the next note sees it
    }
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Every live process (not a zombie) whose environment or command line mentions the store. */
export function storeProcesses(store: Store): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      if (/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1');
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
      // qemu gets the store's paths on its command line (kernel, sockets, disks) even with a clean environment
      if (env.includes(store.home) || argv.includes(store.home)) pids.push(Number(entry));
    } catch {
      // exited while we looked, or not ours to read
    }
  }
  return pids;
}

function ipList(args: string[]): string[] {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
  } catch {
    return [];
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A snapshot of everything the store should no longer have after `rm --all`. */
export function scanLeftovers(store: Store): Leftovers {
  noteNetworks(store);
  const known = knownNetworkNames.get(store.home) ?? new Set<string>();
  const namespaces = new Set(ipList(['netns', 'list']).map((line) => line.split(' ')[0] ?? ''));
  const links = new Set(ipList(['-o', 'link', 'show']).map((line) => (/^\d+: ([^:@]+)/.exec(line)?.[1] ?? '')));
  return {
    processes: storeProcesses(store).map((pid) => ({ pid, comm: comm(pid) })),
    run: entries(store.runDir),
    files: [
      ...entries(store.clustersDir).map((e) => `clusters/${e}`),
      ...entries(store.logsDir).filter((e) => e.startsWith('holder-')).map((e) => `logs/${e}`),
    ],
    network: [...known].filter((name) => namespaces.has(name) || links.has(name)),
    cgroups: storeCgroups(store),
  };
}

/** cgroup directories named for this store's members (see src/store/cgroup.ts). */
function storeCgroups(store: Store): string[] {
  const mount = cgroup2Mount();
  if (!mount) return [];
  const prefix = memberCgroupName(store.home, '');
  return entries(mount).filter((e) => e.startsWith(prefix)).map((e) => join(mount, e));
}

function isEmpty(found: Leftovers): boolean {
  return found.processes.length + found.run.length + found.files.length + found.network.length + found.cgroups.length === 0;
}

/**
 * Asserts the store left nothing behind: no process, socket, lock, pidfile, cluster directory,
 * holder log, namespace or link. Processes get a short grace (an exiting holder may still be
 * closing); files none. Whatever is found is cleaned up before the error is thrown, so a failing
 * test does not poison the next one.
 */
export async function assertNoLeftovers(store: Store, graceMs = 3_000): Promise<void> {
  leakStats.scans++;
  const deadline = Date.now() + graceMs;
  let found = scanLeftovers(store);
  while (found.processes.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    found = scanLeftovers(store);
  }
  if (isEmpty(found)) return;
  leakStats.leaks++;
  for (const { pid } of found.processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const path of found.cgroups) destroyCgroupSync(path);
  for (const name of found.network) {
    try {
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    } catch {
      // a link, not a namespace, or gone
    }
  }
  throw new Error(`left behind in ${store.home}: ${JSON.stringify(found)}`);
}

/** True once no process of the store runs any more (bounded wait). */
export async function noProcessesWithin(store: Store, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (storeProcesses(store).length > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
