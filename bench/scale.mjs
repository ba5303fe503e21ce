#!/usr/bin/env node
// Scale of the process backend, as a user meets it from the shell: `up -n 100`, the memory of a
// default member, what an idle holder of 100 members costs, `ls` of 50 against the CLI's own
// start. Prints a table; numbers go to docs/benchmarks.md. Run: npm run build && node bench/scale.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Store } from '../dist/store/layout.js';
import { listMembers, readMemberState } from '../dist/store/members.js';
import { liveHolder } from '../dist/store/pidfile.js';
import { printRows } from './table.mjs';

const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const RUNS = Number(process.argv[2] ?? 3);
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function cli(env, args) {
  const t0 = performance.now();
  execFileSync(CLI, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
  return performance.now() - t0;
}

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
function cpuTicks(pid) {
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = rest.slice(rest.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}

/** The share of one core `pid` used over the next `ms`. */
async function cpuPercent(pid, ms) {
  const before = cpuTicks(pid);
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ((cpuTicks(pid) - before) / TICKS / ((performance.now() - t0) / 1000)) * 100;
}

const rows = [];
const ups = [];
let rss = [];
const idleAfterUp = [];
const idle = [];
for (let run = 0; run < RUNS; run++) {
  const home = mkdtempSync('/tmp/fbx-scale-');
  const env = { ...process.env, FLEETBOX_HOME: home };
  try {
    ups.push(cli(env, ['up', 'big', '-n', '100', '--backend', 'process']));
    const store = new Store(home);
    const members = listMembers(store, 'big');
    rss = rss.concat(members.map((ref) => rssMiB(readMemberState(store, 'big', ref.name)?.pid)));
    const holder = liveHolder(store.pidfilePath('big', 'big-1')).pid;
    // Right after `up` the holder is still settling (the first rounds, the garbage collector
    // giving back what adopting 100 members took); an idle holder is the one after that.
    idleAfterUp.push(await cpuPercent(holder, 10_000));
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    idle.push(await cpuPercent(holder, 20_000));
    if (run === 0) {
      execFileSync(CLI, ['rm', ...members.slice(50).map((m) => m.name), '--yes'], { env, stdio: 'ignore' });
      const ls = median(Array.from({ length: 10 }, () => cli(env, ['ls'])));
      const version = median(Array.from({ length: 10 }, () => cli(env, ['--version'])));
      rows.push(['`fleetbox ls` of 50 members / `fleetbox --version` (medians of 10)', `${ls.toFixed(0)} ms / ${version.toFixed(0)} ms = ${(ls / version).toFixed(2)}×`, '≤ 1.3×']);
    }
    execFileSync(CLI, ['rm', '--all', '--yes'], { env, stdio: 'ignore' });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
rows.unshift(
  [`\`fleetbox up big -n 100 --backend process\`, wall (median of ${RUNS})`, `${(median(ups) / 1000).toFixed(2)} s`, '< 3 s'],
  ['RSS of a default process member (median of all)', `${median(rss).toFixed(1)} MiB`, '< 10 MiB'],
  [`holder of 100 members, CPU over the first 10 s after \`up\` (median of ${RUNS})`, `${median(idleAfterUp).toFixed(2)} % of a core`, '–'],
  [`idle holder of 100 members, CPU over 20 s from 15 s after \`up\` (median of ${RUNS})`, `${median(idle).toFixed(2)} % of a core`, '< 1 %'],
);
printRows(rows);
