#!/usr/bin/env node
// `fleetbox up` from the shell, as a user runs it, with where the time goes: the holder's log
// gives its steps, each member's console gives the moment the guest printed its ready marker.
// Rounds of `up b -n 1` and `up b -n 3` (plus one command in a member), then `rm`; this build
// both booting (`--boot`) and cloning members from a booted template (its default). With
// FLEETBOX_BENCH_OTHER=<another checkout's bin/fleetbox> both builds run interleaved, round by
// round, on the same machine noise. Needs root and `fleetbox setup`.
// Run: npm run build && node bench/up.mjs [rounds, default 5]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printRows } from './table.mjs';

const ROUNDS = Number(process.argv[2] ?? 5);
const builds = [['this build', fileURLToPath(new URL('../bin/fleetbox', import.meta.url))]];
if (process.env.FLEETBOX_BENCH_OTHER) builds.push(['other build', process.env.FLEETBOX_BENCH_OTHER]);
const median = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** CPU seconds (user + system) of every process in the member's cgroups so far, from the holder's QEMU pids. */
function cpuSecondsOf(pids) {
  const tick = 100;
  let total = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // gone
    }
  }
  return total;
}

/** One `up b -n <n>` (and a first command in b-1), timed from the shell and broken down. */
function upOnce(cli, home, n, extra = []) {
  const env = { ...process.env, FLEETBOX_HOME: home };
  const names = Array.from({ length: n }, (_, i) => `b-${i + 1}`);
  const serials = names.map((name) => join(home, 'clusters', 'b', name, 'serial.log'));
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const readyAt = new Map();
    const watch = setInterval(() => {
      for (const [i, serial] of serials.entries()) {
        if (!readyAt.has(i) && existsSync(serial) && readFileSync(serial, 'utf8').includes('FLEETBOX_READY')) readyAt.set(i, Date.now());
      }
    }, 2);
    const child = spawn(cli, ['up', 'b', '-n', String(n), ...extra], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      const upEnd = Date.now();
      clearInterval(watch);
      const first = spawnSync(cli, ['ssh', 'b-1', '--', 'true'], { env });
      const cmdEnd = Date.now();
      const log = readFileSync(join(home, 'logs', 'holder-b.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
        .filter((e) => Date.parse(e.time) >= t0);
      const at = (event, pick = () => true) => {
        const hit = log.find((e) => e.event === event && pick(e));
        return hit ? Date.parse(hit.time) : Number.NaN;
      };
      const last = (event, pick = () => true) => Math.max(...log.filter((e) => e.event === event && pick(e)).map((e) => Date.parse(e.time)));
      const qemuPids = log.filter((e) => e.event === 'qemu_started').map((e) => e.pid);
      const cpu = cpuSecondsOf(qemuPids);
      spawnSync(cli, ['rm', '--all', '--yes'], { env, stdio: 'ignore' });
      if (code !== 0 || first.status !== 0 || readyAt.size !== n) {
        reject(new Error(`up -n ${n} failed (${code}, first command ${first.status}): ${stderr}${first.stderr}`));
        return;
      }
      const holderStart = at('holder_start');
      const networkOpen = at('network_open');
      const prepared = at('qemu_prepared');
      const started = at('qemu_started');
      // A clone prints its ready marker once it has its identity, just before it runs.
      const lastReady = Math.max(...readyAt.values());
      const running = last('member_state', (e) => e.state === 'running');
      resolve({
        wall: upEnd - t0,
        withCommand: cmdEnd - t0,
        steps: {
          'CLI start, lock, reconcile, holder spawn': holderStart - t0,
          'holder start → network open': networkOpen - holderStart,
          'network open → image checked (first member)': prepared - networkOpen,
          'image checked → QEMU started (first member)': started - prepared,
          'QEMU started → last guest ready marker': lastReady - started,
          'last ready marker → last member running': running - lastReady,
          'last member running → up returns': upEnd - running,
        },
        afterReady: upEnd - lastReady,
        cpu,
      });
    });
  });
}

// Each build with each way of starting: [label, cli, extra args].
// This build boots with --boot and clones by default; another build is run as it comes.
const modes = [
  [`${builds[0][0]} --boot`, builds[0][1], ['--boot']],
  ...builds.slice(1).map(([label, cli]) => [label, cli, []]),
  [`${builds[0][0]} (clones, the default)`, builds[0][1], []],
];
const homes = modes.map(() => mkdtempSync('/tmp/fbx-bup-'));
const results = modes.map(() => ({ 1: [], 3: [] }));
try {
  // One round each first to build and cache the image, the recorded hashes, the KVM verdict and
  // the template: not measured.
  for (const [i, [, cli, extra]] of modes.entries()) await upOnce(cli, homes[i], 1, extra);
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of [1, 3]) {
      for (const [i, [, cli, extra]] of modes.entries()) results[i][n].push(await upOnce(cli, homes[i], n, extra));
    }
  }
  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const cores = cpus().length;
  console.log(`medians of ${ROUNDS} interleaved rounds, ${cores} cores`);
  const rows = [];
  for (const [i, [label]] of modes.entries()) {
    for (const n of [1, 3]) {
      const runs = results[i][n];
      const pick = (f) => median(runs.map(f));
      const fast = label.endsWith('(clones, the default)');
      rows.push([`${label}: up -n ${n} wall`, s(pick((r) => r.wall)), fast ? (n === 3 ? '< 1.5 s' : '-') : n === 3 ? '≤ 1.3 × CPU floor' : '-']);
      for (const step of Object.keys(runs[0].steps)) rows.push([`  ${step}`, s(pick((r) => r.steps[step]))]);
      rows.push([`  ready marker → up returns`, s(pick((r) => r.afterReady)), n === 1 && !fast ? '< 0.3 s' : '-']);
      rows.push([`  guests' CPU seconds (QEMU, whole run)`, `${pick((r) => r.cpu).toFixed(2)} s`]);
      rows.push([`  CPU floor (CPU seconds / ${cores} cores)`, s(pick((r) => (r.cpu / cores) * 1000))]);
      rows.push([`  up -n ${n} + first command`, s(pick((r) => r.withCommand)), n === 3 ? '< 4 s (design)' : '-']);
    }
  }
  printRows(rows);
} finally {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
}
