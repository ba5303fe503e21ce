#!/usr/bin/env node
// The user's own software in members, measured from the shell as a user runs it: `fleetbox up`
// to running for the initramfs guest, --rootfs host and --image (1 and 3 members, the three
// interleaved in every round so they share the machine's noise), QEMU + virtiofsd RSS per member,
// the first and second run of a large program (python3) in a guest, and `fleetbox image build`
// cold and cached. Needs root and `fleetbox setup`. Numbers go to docs/benchmarks.md.
// Run: npm run build && node bench/userland.mjs [rounds, default 5]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupPids, memberCgroupPath } from '../dist/host/cgroup.js';
import { printRows } from './table.mjs';

const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const ROUNDS = Number(process.argv[2] ?? 5);
const SHARED = mkdtempSync('/tmp/fbx-bu-');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function run(home, args) {
  const t0 = performance.now();
  execFileSync(CLI, args, { env: { ...process.env, FLEETBOX_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
  return performance.now() - t0;
}

/** A store of its own whose images (kernel, initramfs, built roots) are shared with the others. */
function store() {
  const home = mkdtempSync('/tmp/fbx-bu-');
  symlinkSync(join(SHARED, 'images'), join(home, 'images'));
  symlinkSync(join(SHARED, 'ssh'), join(home, 'ssh'));
  return home;
}

const comm = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const MODES = {
  initramfs: [],
  'rootfs host': ['--rootfs', 'host'],
  'image redis': ['--image', 'redis'],
  'image with --init systemd': ['--image', 'sysd', '--init', 'systemd'],
};
const boot = Object.fromEntries(Object.keys(MODES).flatMap((m) => [[`${m} 1`, []], [`${m} 3`, []]]));
const rss = Object.fromEntries(Object.keys(MODES).map((m) => [m, { qemu: [], virtiofsd: [] }]));
const firstExec = { first: [], second: [] };
const build = { cold: [], cached: [] };

try {
  mkdirSync(join(SHARED, 'images'), { recursive: true, mode: 0o700 });
  mkdirSync(join(SHARED, 'ssh'), { recursive: true, mode: 0o700 });
  // Warm: kernel, initramfs, KVM verdict, and the image, so rounds measure boots only.
  execFileSync(CLI, ['setup', '--yes'], { env: { ...process.env, FLEETBOX_HOME: SHARED }, stdio: 'ignore' });
  for (let i = 0; i < 2; i++) build.cold.push(run(SHARED, ['image', 'build', 'redis', '--packages', 'redis-server', '--force']));
  for (let i = 0; i < 3; i++) build.cached.push(run(SHARED, ['image', 'build', 'redis', '--packages', 'redis-server']));
  run(SHARED, ['image', 'build', 'sysd', '--packages', 'systemd-sysv']);

  for (let round = 0; round < ROUNDS; round++) {
    for (const [mode, flags] of Object.entries(MODES)) {
      for (const n of [1, 3]) {
        const home = store();
        try {
          boot[`${mode} ${n}`].push(run(home, ['up', 'b', '-n', String(n), ...flags]));
          if (n === 1) {
            const pids = cgroupPids(memberCgroupPath(home, 'b-1'));
            for (const pid of pids) {
              const name = comm(pid);
              if (name.startsWith('qemu')) rss[mode].qemu.push(rssMiB(pid));
              if (name === 'virtiofsd') rss[mode].virtiofsd.push(rssMiB(pid));
            }
            if (mode === 'rootfs host') {
              firstExec.first.push(run(home, ['ssh', 'b-1', '--', 'python3 -c "import json, asyncio"']));
              firstExec.second.push(run(home, ['ssh', 'b-1', '--', 'python3 -c "import json, asyncio"']));
            }
          }
        } finally {
          try {
            run(home, ['rm', '--all', '--yes']);
          } finally {
            rmSync(home, { recursive: true, force: true });
          }
        }
      }
    }
  }
} finally {
  rmSync(SHARED, { recursive: true, force: true });
}

const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
const rows = [];
for (const n of [1, 3]) {
  const base = median(boot[`initramfs ${n}`]);
  for (const mode of Object.keys(MODES)) {
    const m = median(boot[`${mode} ${n}`]);
    const extra = mode === 'initramfs' ? '' : ` (+${((m - base) / 1000).toFixed(2)} s, ${(m / base).toFixed(2)}×)`;
    const goal = mode === 'rootfs host' ? 'within 0.6 s of initramfs' : mode === 'image redis' ? 'a cached image adds < 0.3 s' : '-';
    rows.push([`\`fleetbox up -n ${n}\` to running, ${mode} (median of ${ROUNDS})${extra}`, s(m), goal]);
  }
}
for (const mode of Object.keys(MODES)) {
  const { qemu, virtiofsd } = rss[mode];
  rows.push([`RSS of member 1, ${mode}: QEMU + virtiofsd (medians)`, `${median(qemu).toFixed(0)} + ${virtiofsd.length ? median(virtiofsd).toFixed(0) : 0} MiB`, '-']);
}
rows.push([`\`fleetbox ssh\` python3 importing json+asyncio on --rootfs host: first / second run (medians)`, `${s(median(firstExec.first))} / ${s(median(firstExec.second))}`, '-']);
rows.push(['`fleetbox image build redis --packages redis-server`: cold (--force) / cached (medians)', `${s(median(build.cold))} / ${s(median(build.cached))}`, '-']);
printRows(rows);
