#!/usr/bin/env node
// Cluster snapshot and fork from the shell, as a user runs them: a 3-member cluster is warmed
// (32 MiB written to each member's RAM root, a process left running), then rounds interleave
// `fleetbox snapshot`, `up f --from` (a fork of 3) and, side by side on the same machine noise,
// `up b -n 3` (clones of the template, the default) and `up b -n 3 --boot`; each start is timed
// to running plus one command in a member. Needs root and `fleetbox setup`.
// Run: npm run build && node bench/snapshot.mjs [rounds, default 5]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printRows } from './table.mjs';

const ROUNDS = Number(process.argv[2] ?? 5);
const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const home = mkdtempSync('/tmp/fbx-bsnap-');
const env = { ...process.env, FLEETBOX_HOME: home };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;

function fb(args) {
  const t0 = performance.now();
  const r = spawnSync(CLI, args, { env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`fleetbox ${args.join(' ')}: ${r.stderr}`);
  return { ms: performance.now() - t0, stdout: r.stdout };
}

/** RSS and PSS (MiB) of the QEMU of each member of `cluster`. */
function memoryOf(cluster) {
  const members = JSON.parse(fb(['ls', '--json']).stdout).filter((m) => m.cluster === cluster);
  return members.map((m) => {
    const rollup = readFileSync(`/proc/${m.pid}/smaps_rollup`, 'utf8');
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0);
    return { rss: kib('Rss') / 1024, pss: kib('Pss') / 1024 };
  });
}

/** A start of 3 members timed to running, then to the first command's answer. */
function start(args, cluster) {
  const up = fb(args);
  const first = fb(['ssh', `${cluster}-1`, '--', 'true']);
  return { up: up.ms, first: up.ms + first.ms };
}

const rows = [];
try {
  fb(['up', 'src', '-n', '3']);
  for (const m of ['src-1', 'src-2', 'src-3']) {
    fb(['ssh', m, '--', 'dd if=/dev/urandom of=/tmp/warm bs=1M count=32 2>/dev/null; (while true; do sleep 1; done) >/dev/null 2>&1 &']);
  }
  // Not measured: the first start of each kind (template, page cache of the image).
  fb(['up', 'b', '-n', '3']);
  fb(['rm', 'b', '--yes']);
  const runs = { snapshot: [], paused: [], bytes: [], fork: [], clone: [], boot: [] };
  let forkMemory = [];
  let cloneMemory = [];
  for (let round = 0; round < ROUNDS; round++) {
    const snap = fb(['snapshot', 'src', `w${round}`, '--json']);
    const manifest = JSON.parse(snap.stdout);
    runs.snapshot.push(snap.ms);
    runs.paused.push(manifest.pausedMs);
    runs.bytes.push(manifest.bytes);
    runs.fork.push(start(['up', 'f', '--from', `w${round}`], 'f'));
    if (round === 0) forkMemory = memoryOf('f');
    fb(['rm', 'f', '--yes']);
    fb(['snapshot', 'rm', `w${round}`]);
    runs.clone.push(start(['up', 'b', '-n', '3'], 'b'));
    if (round === 0) cloneMemory = memoryOf('b');
    fb(['rm', 'b', '--yes']);
    runs.boot.push(start(['up', 'b', '-n', '3', '--boot'], 'b'));
    fb(['rm', 'b', '--yes']);
  }
  const mib = (list, key) => `${median(list.map((m) => m[key])).toFixed(0)} MiB`;
  rows.push(
    [`\`snapshot\` of 3 warmed members, wall (median of ${ROUNDS})`, s(median(runs.snapshot))],
    ['  of which the members stood paused', s(median(runs.paused))],
    ['  snapshot size on disk', `${(median(runs.bytes) / 1048576).toFixed(0)} MiB`],
    ['`up f --from` (fork of 3) → running', s(median(runs.fork.map((r) => r.up)))],
    ['  + first command in f-1', s(median(runs.fork.map((r) => r.first)))],
    ['`up b -n 3` (clones of the template) → running', s(median(runs.clone.map((r) => r.up)))],
    ['  + first command in b-1', s(median(runs.clone.map((r) => r.first)))],
    ['`up b -n 3 --boot` → running', s(median(runs.boot.map((r) => r.up)))],
    ['  + first command in b-1', s(median(runs.boot.map((r) => r.first)))],
    ['QEMU RSS / PSS of a fork member (warmed: 32 MiB written)', `${mib(forkMemory, 'rss')} / ${mib(forkMemory, 'pss')}`],
    ['QEMU RSS / PSS of a clone member (fresh)', `${mib(cloneMemory, 'rss')} / ${mib(cloneMemory, 'pss')}`],
  );
  printRows(rows.map(([what, value]) => [what, value]));
} finally {
  spawnSync(CLI, ['rm', '--all', '--yes'], { env, stdio: 'ignore' });
  rmSync(home, { recursive: true, force: true });
}
