#!/usr/bin/env node
// Control-plane benchmarks on the process backend. Prints a table; numbers go to docs/benchmarks.md.
// Run: npm run bench   (builds first). Uses a throw-away FLEETBOX_HOME under /tmp.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Store } from '../dist/store/layout.js';
import { up } from '../dist/control/up.js';
import { request } from '../dist/control/client.js';
import { removeMembers } from '../dist/control/remove.js';
import { listMembers } from '../dist/store/members.js';
import { StatusReplySchema } from '../dist/protocol/schemas.js';
import { isProcessAlive } from '../dist/host/proc.js';
import { printRows } from './table.mjs';

const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const OWNER = fileURLToPath(new URL('../test/fixtures/bound-owner.mjs', import.meta.url));
const home = mkdtempSync('/tmp/fbx-bench-');
const store = new Store(home).ensure();
const env = { ...process.env, FLEETBOX_HOME: home };
const rows = [];
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (n) => `${n.toFixed(n < 10 ? 2 : 0)} ms`;
const median = (xs) => pct([...xs].sort((a, b) => a - b), 50);

function wall(args, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync(CLI, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
    times.push(performance.now() - t0);
  }
  return median(times);
}

try {
  // 1. status round trip over a member socket
  await up(store, { names: ['rt'], spec: { backend: 'process' } });
  const socket = store.memberSocketPath('rt-1');
  for (let i = 0; i < 100; i++) await request(socket, { cmd: 'status' }, StatusReplySchema);
  const rtt = [];
  for (let i = 0; i < 1000; i++) {
    const t0 = performance.now();
    await request(socket, { cmd: 'status' }, StatusReplySchema);
    rtt.push(performance.now() - t0);
  }
  rtt.sort((a, b) => a - b);
  rows.push(['status round trip p50 (1,000 calls)', ms(pct(rtt, 50)), '< 1 ms']);
  rows.push(['status round trip p99 (1,000 calls)', ms(pct(rtt, 99)), '< 5 ms']);

  // 2. ls and status wall time, CLI start included
  const t0 = performance.now();
  await up(store, { names: ['fifty'], count: 49, spec: { backend: 'process' } });
  rows.push(['up of 49 process members (one holder)', ms(performance.now() - t0), '-']);
  rows.push(['`fleetbox ls` with 50 members (median of 10)', ms(wall(['ls'], 10)), '< 300 ms']);
  await up(store, { names: ['hundred'], count: 50, spec: { backend: 'process' } });
  rows.push(['`fleetbox status` with 100 members (median of 10)', ms(wall(['status', '--json'], 10)), '< 150 ms']);
  rows.push(['`fleetbox --version` (node + CLI start alone)', ms(wall(['--version'], 10)), '-']);
  await removeMembers(store, listMembers(store));

  // 3. bound-mode reap after kill -9 of the owner
  const reaps = [];
  for (let i = 0; i < 5; i++) {
    const owner = spawn(process.execPath, [OWNER, `reap${i}`, '3'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise((resolve) => createInterface({ input: owner.stdout }).once('line', resolve));
    const started = JSON.parse(line);
    const pids = [started.holderPid, ...started.members.map((m) => m.pid)];
    const t = performance.now();
    owner.kill('SIGKILL');
    while (pids.some(isProcessAlive)) await new Promise((resolve) => setTimeout(resolve, 1));
    reaps.push(performance.now() - t);
  }
  rows.push(['bound reap after kill -9 of owner, 3 members (median of 5)', ms(median(reaps)), '< 500 ms']);
} finally {
  await removeMembers(store, listMembers(store)).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
}

printRows(rows);
