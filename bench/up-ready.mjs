#!/usr/bin/env node
// `fleetbox up x -n 1` from the shell: wall time, and how long it takes after the guest printed
// its ready marker (what fleetbox itself adds once the guest is up: the readiness check, state
// writes, the CLI's own exit). With FLEETBOX_BENCH_OTHER=<path to another checkout's
// bin/fleetbox> the two builds run interleaved, round by round, on the same machine noise.
// Needs root and `fleetbox setup`. Run: npm run build && node bench/up-ready.mjs [rounds, default 7]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printRows } from './table.mjs';

const ROUNDS = Number(process.argv[2] ?? 7);
const builds = [['this build', fileURLToPath(new URL('../bin/fleetbox', import.meta.url))]];
if (process.env.FLEETBOX_BENCH_OTHER) builds.push(['other build', process.env.FLEETBOX_BENCH_OTHER]);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs `up` and notes when the ready marker appears in the member's console, polling every 2 ms. */
function upOnce(cli, home) {
  const env = { ...process.env, FLEETBOX_HOME: home };
  const serial = join(home, 'clusters', 'ur', 'ur-1', 'serial.log');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let readyAt;
    const watch = setInterval(() => {
      if (readyAt === undefined && existsSync(serial) && readFileSync(serial, 'utf8').includes('FLEETBOX_READY')) readyAt = performance.now();
    }, 2);
    const child = spawn(cli, ['up', 'ur', '-n', '1'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      const end = performance.now();
      clearInterval(watch);
      spawnSync(cli, ['rm', '--all', '--yes'], { env, stdio: 'ignore' });
      if (code !== 0 || readyAt === undefined) reject(new Error(`up failed (${code}): ${stderr}`));
      else resolve({ wall: end - t0, afterReady: end - readyAt });
    });
  });
}

const homes = builds.map(() => mkdtempSync('/tmp/fbx-bur-'));
const results = builds.map(() => ({ wall: [], afterReady: [] }));
try {
  // One round each first to build and cache the image and the KVM verdict: not measured.
  for (const [i, [, cli]] of builds.entries()) await upOnce(cli, homes[i]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, cli]] of builds.entries()) {
      const r = await upOnce(cli, homes[i]);
      results[i].wall.push(r.wall);
      results[i].afterReady.push(r.afterReady);
    }
  }
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`medians of ${ROUNDS} interleaved rounds`);
  printRows(
    builds.flatMap(([label], i) => [
      [`${label}: up -n 1 wall`, s(median(results[i].wall))],
      [`${label}: ready marker → up returns`, s(median(results[i].afterReady)), '< 0.3 s'],
    ]),
  );
} finally {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
}
