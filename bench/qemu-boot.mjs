// Real-VM numbers for the qemu backend: image build (cold and cached), boot to running
// (ready marker on the console + SSH answering) for 1 and 3 members, QEMU RSS, graceful stop.
// Usage: npx tsc -p tsconfig.build.json && node bench/qemu-boot.mjs [--runs N]
// Needs root (network namespaces) and the apt packages of `fleetbox setup`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Store } from '../dist/store/layout.js';
import { MemberConfigSchema } from '../dist/store/member-config.js';
import { createQemuBackend } from '../dist/backend/qemu/index.js';
import { ensureImage } from '../dist/image/ensure-image.js';
import { readKvmVerdict } from '../dist/backend/qemu/kvm-probe.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const log = { info() {}, warn() {}, error() {} };
const rows = [];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (xs) => ({ min: Math.min(...xs), median: median(xs), max: Math.max(...xs), n: xs.length });
const record = (what, xs, unit) => rows.push({ what, ...stats(xs), unit });

function rssMiB(pid) {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

function newStore() {
  return new Store(mkdtempSync('/tmp/fbx-b-')).ensure();
}

// --- image build -----------------------------------------------------------------------------
async function imageNumbers() {
  const cold = newStore();
  let t = performance.now();
  const image = await ensureImage(cold);
  const fullyCold = performance.now() - t;
  const builds = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(image.dir, { recursive: true, force: true });
    t = performance.now();
    await ensureImage(cold);
    builds.push(performance.now() - t);
  }
  const cachedInProcess = [];
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    await ensureImage(cold);
    cachedInProcess.push(performance.now() - t);
  }
  // A new process must hash the ~50 MB kernel once before trusting it.
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const script = `const {Store}=await import('${dist}store/layout.js');const {ensureImage}=await import('${dist}image/ensure-image.js');const t=performance.now();await ensureImage(new Store('${cold.home}'));console.log(performance.now()-t)`;
  const cachedNewProcess = [];
  for (let i = 0; i < RUNS; i++) {
    cachedNewProcess.push(Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim()));
  }
  rows.push({ what: 'image: first ever (apt-get download + unpack + build)', min: fullyCold, median: fullyCold, max: fullyCold, n: 1, unit: 'ms' });
  record('image: cold build (kernel package cached)', builds, 'ms');
  record('image: cached, verify in a new process', cachedNewProcess, 'ms');
  record('image: cached, same process', cachedInProcess, 'ms');
  return cold;
}

// --- boots ---------------------------------------------------------------------------------
async function boot(backend, network, store, cluster, name) {
  mkdirSync(store.memberDir(cluster, name), { recursive: true });
  const config = MemberConfigSchema.parse({ name, cluster, backend: 'qemu', createdAt: new Date().toISOString() });
  const ctx = { store, config, network: await network.attach(name), log, signal: new AbortController().signal };
  await backend.prepare(ctx, () => {});
  const t0 = performance.now();
  const handle = await backend.start(ctx);
  while (!(await backend.probe(ctx, handle))) {
    if (performance.now() - t0 > 60_000) throw new Error(`${name} did not boot:\n${backend.diagnose(ctx)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { ctx, handle, ms: performance.now() - t0 };
}

async function bootNumbers(store) {
  const backend = createQemuBackend();
  const one = [];
  const three = [];
  const rss = [];
  const stops = [];
  const network = await backend.openNetwork(store, 'bench', log);
  try {
    for (let i = 0; i < RUNS; i++) {
      const vm = await boot(backend, network, store, 'bench', 'bench-1');
      one.push(vm.ms);
      rss.push(rssMiB(vm.handle.pid));
      const t = performance.now();
      await backend.stop(vm.ctx, vm.handle, 10_000);
      stops.push(performance.now() - t);
      await network.detach('bench-1');
    }
    for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 2)); i++) {
      const t = performance.now();
      const vms = await Promise.all([2, 3, 4].map((n) => boot(backend, network, store, 'bench', `bench-${n}`)));
      three.push(performance.now() - t);
      for (const vm of vms) rss.push(rssMiB(vm.handle.pid));
      await Promise.all(vms.map((vm) => backend.stop(vm.ctx, vm.handle, 10_000)));
      await Promise.all(vms.map((vm) => network.detach(vm.ctx.config.name)));
    }
  } finally {
    await network.close();
  }
  record('boot 1 member to running (spawn → marker + SSH banner)', one, 'ms');
  record('boot 3 members concurrently, all running (wall)', three, 'ms');
  record('QEMU RSS per member after boot', rss, 'MiB');
  record('graceful stop (QMP powerdown → QEMU exit)', stops, 'ms');
}

const store = await imageNumbers();
let verdict;
try {
  await bootNumbers(store);
  verdict = readKvmVerdict(store) ?? { accel: 'tcg', reason: 'no verdict file' };
} finally {
  rmSync(store.home, { recursive: true, force: true });
}
console.log(`qemu backend, ${cpus().length} cores (${cpus()[0]?.model}), node ${process.version}, accel ${verdict.accel} (${verdict.reason}), ${RUNS} runs\n`);
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const width = Math.max(...rows.map((r) => r.what.length));
console.log(`${'what'.padEnd(width)}  ${'min'.padStart(7)}  ${'median'.padStart(7)}  ${'max'.padStart(7)}  unit  n`);
for (const r of rows) {
  console.log(`${r.what.padEnd(width)}  ${fmt(r.min).padStart(7)}  ${fmt(r.median).padStart(7)}  ${fmt(r.max).padStart(7)}  ${r.unit.padEnd(4)}  ${r.n}`);
}
