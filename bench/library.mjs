#!/usr/bin/env node
// Library numbers: startCluster({members: 3}) → first exec answered, exec round trip p50 for
// `true`, reap time after SIGKILL of the owning process. Usage: node bench/library.mjs [qemu|process]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../dist/index.js';
import { isProcessAlive } from '../dist/host/proc.js';
import { printRows } from './table.mjs';

const backend = process.argv[2] ?? 'qemu';
const home = mkdtempSync('/tmp/fbx-bl-');
const OWNER = fileURLToPath(new URL('./owner.mjs', import.meta.url));
const rows = [];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (n) => `${n.toFixed(n < 10 ? 2 : 0)} ms`;

try {
  // Warm-up: image preparation is measured separately (it is cached after the first run).
  const warm = await startCluster({ name: 'warm', backend, home });
  await warm.members[0].exec('true');
  await warm.destroy();
  const t0 = performance.now();
  const cluster = await startCluster({ name: 'bench', members: 3, backend, home });
  await cluster.members[0].exec('true');
  rows.push([`startCluster({members: 3}) → first exec answered (${backend})`, ms(performance.now() - t0)]);
  const times = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    await cluster.members[i % 3].exec('true');
    times.push(performance.now() - t);
  }
  rows.push([`exec('true') round trip p50 of 30 (${backend})`, ms(median(times))]);
  await cluster.destroy();

  const reaps = [];
  for (let i = 0; i < 3; i++) {
    const owner = spawn(process.execPath, [OWNER, backend, `reap${i}`], { env: { ...process.env, FLEETBOX_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise((resolve) => createInterface({ input: owner.stdout }).once('line', resolve));
    const pids = JSON.parse(line);
    const t = performance.now();
    owner.kill('SIGKILL');
    while (pids.some(isProcessAlive)) await new Promise((resolve) => setTimeout(resolve, 2));
    reaps.push(performance.now() - t);
  }
  rows.push([`reap after SIGKILL of the owning process, 1 member (median of 3, ${backend})`, ms(median(reaps))]);
} finally {
  rmSync(home, { recursive: true, force: true });
}
printRows(rows);
