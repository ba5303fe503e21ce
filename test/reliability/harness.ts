import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { getStatus, type MemberView } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { listMembers, readMemberState } from '../../dist/store/members.js';
import { isProcessAlive, isSameProcess } from '../../dist/host/proc.js';
import { CLI } from '../helpers.js';
import { noteNetworks, storeProcesses } from './leftovers.js';

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/fleetbox against `store`; never throws, the result says how it ended. */
export function cli(store: Store, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      CLI,
      args,
      { env: { ...process.env, FLEETBOX_HOME: store.home, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        noteNetworks(store);
        const failure = error as (Error & { code?: number | string; signal?: string | null }) | null;
        resolve({
          code: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
          signal: failure?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

const SETTLED = new Set(['running', 'stopped', 'error']);

/**
 * Waits (bounded) until no member of the store is starting, stopping or downloading and every
 * process of the store is one the views account for: a holder that outlived its crashed client
 * may still be coming up, which is legitimate, and is what this waits out.
 */
export async function settle(store: Store, timeoutMs = 15_000): Promise<MemberView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(listMembers(store).map((ref) => getStatus(store, ref)));
    const accounted = new Set(views.flatMap((v) => [v.pid, v.holderPid]));
    const quiet = storeProcesses(store).every((pid) => accounted.has(pid));
    if ((views.every((v) => SETTLED.has(v.state)) && quiet) || Date.now() > deadline) return views;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * `fleetbox ls --json` tells the truth: it lists exactly the members on disk; what it calls
 * running has a live process and a live holder; what it calls stopped has no process left; and
 * no process of the store runs that ls does not account for (no invisible orphan).
 */
export async function expectLsTruthful(store: Store): Promise<MemberView[]> {
  const ls = await cli(store, ['ls', '--json']);
  expect(ls.code, ls.stderr).toBe(0);
  const views = JSON.parse(ls.stdout) as MemberView[];
  expect(views.map((v) => v.name)).toEqual(listMembers(store).map((m) => m.name));
  const accounted = new Set<number>();
  for (const view of views) {
    if (view.state === 'running') {
      expect(view.source, view.name).toBe('holder');
      expect(view.pid !== null && isProcessAlive(view.pid), `${view.name} runs pid ${view.pid}`).toBe(true);
      expect(view.holderPid !== null && isProcessAlive(view.holderPid), `${view.name}'s holder ${view.holderPid}`).toBe(true);
    } else {
      expect(['stopped', 'error'], `${view.name} is ${view.state}`).toContain(view.state);
      const recorded = readMemberState(store, view.cluster, view.name);
      if (recorded?.pid != null && recorded.processStartTime) {
        expect(isSameProcess(recorded.pid, recorded.processStartTime), `${view.name} reads ${view.state} but pid ${recorded.pid} lives`).toBe(false);
      }
    }
    if (view.pid !== null) accounted.add(view.pid);
    if (view.holderPid !== null) accounted.add(view.holderPid);
  }
  // A live holder's own helpers (the cluster's dnsmasq, its namespace connector) are its children.
  const holders = new Set(views.map((v) => v.holderPid).filter((pid): pid is number => pid !== null));
  const unaccounted = storeProcesses(store).filter((pid) => !accounted.has(pid) && !holders.has(parentOf(pid)));
  expect(unaccounted.map((pid) => `${pid} ${cmdline(pid)}`), 'processes of the store that ls does not show').toEqual([]);
  return views;
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
  } catch {
    return '?';
  }
}

/** Open file descriptors and resident set size (KiB) of a process, from /proc. */
export function resources(pid: number): { fds: number; rssKiB: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { fds, rssKiB };
}
