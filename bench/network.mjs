#!/usr/bin/env node
// Cluster network numbers on real VMs: re-join time into a live cluster, VM→VM ping RTT,
// throughput through a holder's loopback forward, reconcile time after a crashed 3-member cluster.
// Run after `fleetbox setup --yes`: node bench/network.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Store } from '../dist/store/layout.js';
import { liveHolder } from '../dist/store/pidfile.js';
import { isProcessAlive } from '../dist/host/proc.js';
import { reconcileCluster } from '../dist/store/reconcile.js';
import { defaultHome } from '../dist/store/layout.js';
import { printRows } from './table.mjs';

const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const home = mkdtempSync('/tmp/fbx-bn-');
// Share the default installation's image cache and key so this measures networking, not builds.
const shared = new Store(defaultHome()).ensure();
execFileSync('ln', ['-s', shared.imagesDir, `${home}/images`]);
execFileSync('ln', ['-s', `${shared.home}/ssh`, `${home}/ssh`]);
const store = new Store(home).ensure();
const env = { ...process.env, FLEETBOX_HOME: home };
const fb = (...args) => execFileSync(CLI, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const rows = [];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  fb('up', 'net', '-n', '3');
  const rejoins = [];
  for (let i = 0; i < 3; i++) {
    fb('down', 'net-2');
    const t = performance.now();
    fb('up', 'net-2');
    rejoins.push(performance.now() - t);
  }
  rows.push(['`fleetbox up net-2` re-join into the live cluster (median of 3, CLI wall)', `${(median(rejoins) / 1000).toFixed(2)} s`, '< 2.5 s']);

  const ping = fb('ssh', 'net-1', '--', 'ping -c 20 -i 0.2 net-2');
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping)?.[1];
  rows.push(['VM→VM ping RTT, average of 20 (TCG)', `${rtt} ms`, '-']);

  // setsid: a plain background job dies with the SSH session that started it.
  fb('ssh', 'net-1', '--', "setsid nc -l -p 9000 -e sh -c 'cat >/dev/null; echo done' >/dev/null 2>&1 </dev/null &");
  const [host, port] = fb('forward', 'net-1', '9000').trim().split(':');
  const bytes = 64 * 1024 * 1024;
  const seconds = await new Promise((resolve, reject) => {
    // Bounded: a run that never gets its answer must still reach the clean-up below.
    const timer = setTimeout(() => reject(new Error('no answer through the forward within 60 s')), 60_000);
    const socket = connect({ host, port: Number(port), allowHalfOpen: true });
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let t0 = 0;
    socket.once('connect', async () => {
      t0 = performance.now();
      for (let sent = 0; sent < bytes; sent += chunk.length) {
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
      }
      socket.end();
    });
    socket.on('data', (d) => {
      if (d.toString().includes('done')) {
        clearTimeout(timer);
        resolve((performance.now() - t0) / 1000);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  rows.push(['throughput host → guest through a loopback forward (64 MiB)', `${(bytes / 1024 / 1024 / seconds).toFixed(1)} MB/s`, '-']);

  const holder = liveHolder(store.pidfilePath('net', 'net-1')).pid;
  process.kill(holder, 'SIGKILL');
  while (isProcessAlive(holder)) await new Promise((r) => setTimeout(r, 5));
  const t = performance.now();
  reconcileCluster(store, 'net');
  rows.push(['reconcile after kill -9 of a 3-member cluster\'s holder (in-process)', `${(performance.now() - t).toFixed(0)} ms`, '< 1 s']);
  const t2 = performance.now();
  fb('ls');
  rows.push(['`fleetbox ls` right after (nothing left to reconcile, CLI wall)', `${(performance.now() - t2).toFixed(0)} ms`, '-']);
} finally {
  try {
    fb('rm', '--all', '--yes');
  } catch {
    // reported by the rows missing
  }
  rmSync(home, { recursive: true, force: true });
}
printRows(rows);
