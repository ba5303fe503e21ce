import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../host/logger.js';
import { FleetboxError } from '../protocol/errors.js';
import { writeFileAtomic } from '../store/atomic.js';
import type { Store } from '../store/layout.js';
import { terminateChild } from '../host/proc.js';

const SETPRIV = '/usr/bin/setpriv';
export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface ClusterDns {
  /** Rewrites the name → address table and tells dnsmasq to re-read it. */
  update(addresses: Record<string, string>): void;
  /** Stops dnsmasq and waits (bounded) until it has exited. */
  stop(): Promise<void>;
}

/** This process's dnsmasq per namespace: re-opening a network replaces it instead of clashing on port 53. */
const running = new Map<string, ClusterDns>();

export function hostsFilePath(store: Store, cluster: string): string {
  return join(store.clusterDir(cluster), 'hosts');
}

function hostsText(addresses: Record<string, string>): string {
  return Object.entries(addresses)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, ip]) => `${ip} ${name}\n`)
    .join('');
}

/**
 * Members find each other by name through a dnsmasq inside the cluster's namespace, listening
 * only on the bridge's gateway address and answering only from the cluster's own table (no
 * upstream, no host files): members that join later resolve as soon as they are attached.
 * It dies with the holder (pdeathsig) and with the namespace.
 */
export async function startClusterDns(
  store: Store,
  cluster: string,
  namespace: string,
  gateway: string,
  addresses: Record<string, string>,
  log: Logger,
): Promise<ClusterDns> {
  if (!existsSync(DNSMASQ)) {
    throw new FleetboxError('missing_prerequisite', "dnsmasq is not installed; run 'fleetbox setup --yes'");
  }
  await running.get(namespace)?.stop();
  const hostsFile = hostsFilePath(store, cluster);
  writeFileAtomic(hostsFile, hostsText(addresses), 0o644);
  const args = [
    'ip', 'netns', 'exec', namespace, DNSMASQ,
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll',
    `--addn-hosts=${hostsFile}`, `--listen-address=${gateway}`, '--bind-interfaces',
    '--pid-file', '--user=root', '--group=root', '--log-facility=-', '--local-ttl=1',
  ];
  const child: ChildProcess = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  // dnsmasq logs "started, version …" once it listens, and exits at once on a bad option or a
  // busy address: wait for one or the other (bounded), not for a fixed time.
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('no start message within 5 s'), 5_000);
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/started, version/.test(stderr)) {
        clearTimeout(timer);
        resolve('started');
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(`exit ${code}`);
    });
  });
  if (outcome !== 'started') {
    child.kill('SIGKILL');
    throw new FleetboxError('internal', `dnsmasq for cluster ${cluster} did not start (${outcome}): ${stderr.trim().split('\n').pop() ?? ''}`);
  }
  child.once('exit', (code, signal) => log.warn('dns_exited', { cluster, code, signal }));
  log.info('dns_started', { cluster, pid: child.pid, gateway });
  const dns: ClusterDns = {
    update(next) {
      writeFileAtomic(hostsFile, hostsText(next), 0o644);
      child.kill('SIGHUP');
    },
    async stop() {
      if (running.get(namespace) === dns) running.delete(namespace);
      child.removeAllListeners('exit');
      await terminateChild(child);
    },
  };
  running.set(namespace, dns);
  return dns;
}
