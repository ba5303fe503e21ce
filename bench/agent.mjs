#!/usr/bin/env node
// Commands and copies without a network against SSH, side by side on the same running members,
// from the library as a test uses it: exec round trip (member.exec through the holder and an exec
// port, and through qemu-ga on a member started with FLEETBOX_EXEC_PORTS=0, interleaved) vs an SSH command
// over a shared OpenSSH connection (what the holder kept per guest before the agent) and over a
// fresh one; the exec port back to back (no pause: the guest's CPU is the bound); execAll on 3
// members; copy both ways (member.copyTo/copyFrom vs `ssh cat`).
// `fleetbox up -n 1` minus the guest's own ready time is measured by bench/up-compare.sh.
// Needs root and `fleetbox setup`. Run: npm run build && node bench/agent.mjs [rounds, default 200]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attach } from '../dist/index.js';
import { sshOptions } from '../dist/backend/qemu/ssh.js';
import { readNetworkRecord } from '../dist/net/address-book.js';
import { Store } from '../dist/store/layout.js';
import { printRows } from './table.mjs';

const CLI = fileURLToPath(new URL('../bin/fleetbox', import.meta.url));
const ROUNDS = Number(process.argv[2] ?? 200);
const home = mkdtempSync('/tmp/fbx-ba-');
const env = { ...process.env, FLEETBOX_HOME: home };
const store = new Store(home).ensure();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${x.toFixed(1)} ms`;

async function timed(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

try {
  execFileSync(CLI, ['up', 'ba', '-n', '3', '--mem', '512'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  // The same guest with commands through qemu-ga only (FLEETBOX_EXEC_PORTS=0): the baseline,
  // measured interleaved with the exec ports so that both see the same machine.
  execFileSync(CLI, ['up', 'bq', '-n', '1', '--mem', '512'], { env: { ...env, FLEETBOX_EXEC_PORTS: '0' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const cluster = await attach('ba', { home });
  const [m1] = cluster.members;
  const [viaAgent] = (await attach('bq', { home })).members;
  const net = readNetworkRecord(store, 'ba');
  const ip1 = m1.ip;
  const mux = join(home, 'bench.mux');
  const ssh = (extra, command, input) =>
    spawnSync('ip', ['netns', 'exec', net.namespace, 'ssh', ...sshOptions(store), ...extra, '-T', `root@${ip1}`, command], { input, maxBuffer: 1 << 30 });
  // The shared connection the holder used to keep per guest (ControlMaster), started once here.
  const master = ['-S', mux, '-o', 'ControlMaster=auto', '-o', 'ControlPersist=120'];
  ssh(master, 'true');

  const agentRt = [];
  const portRt = [];
  const agentOut = [];
  const portOut = [];
  for (let i = 0; i < ROUNDS; i++) {
    portRt.push(...(await timed(1, () => m1.exec('true'))));
    agentRt.push(...(await timed(1, () => viaAgent.exec('true'))));
    portOut.push(...(await timed(1, () => m1.exec('echo hello'))));
    agentOut.push(...(await timed(1, () => viaAgent.exec('echo hello'))));
  }
  // Back to back on one member, no pause between calls: the guest's one vCPU is then the bound
  // (what each command costs it, before or after its request, all counts). Its CPU per call is
  // read from the guest's /proc/stat (user + nice + system + irq + softirq, in 10 ms ticks).
  const guestBusy = async () => {
    const [, ...ticks] = (await m1.exec('head -1 /proc/stat')).stdout.trim().split(/\s+/).map(Number);
    return ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6];
  };
  const busyBefore = await guestBusy();
  const backToBack = await timed(ROUNDS, () => m1.exec('true'));
  const guestMsPerCall = ((await guestBusy()) - busyBefore) * 10 / ROUNDS;
  const sshMux = await timed(ROUNDS, () => ssh(master, 'true'));
  const sshFresh = await timed(Math.min(ROUNDS, 30), () => ssh([], 'true'));
  const all = await timed(20, () => cluster.execAll('hostname'));

  const dir = mkdtempSync('/tmp/fbx-ba-cp-');
  const file = join(dir, 'blob');
  const mib = 32;
  writeFileSync(file, Buffer.alloc(mib << 20, 'fleetbox'));
  const copies = { agentIn: [], agentOut: [], sshIn: [], sshOut: [] };
  for (let i = 0; i < 3; i++) {
    let t0 = performance.now();
    await m1.copyTo(file, '/tmp/blob', { timeoutMs: 600_000 });
    copies.agentIn.push(performance.now() - t0);
    t0 = performance.now();
    await m1.copyFrom('/tmp/blob', join(dir, 'back'), { timeoutMs: 600_000 });
    copies.agentOut.push(performance.now() - t0);
    if (statSync(join(dir, 'back')).size !== mib << 20) throw new Error('copy came back short');
    rmSync(join(dir, 'back'));
    t0 = performance.now();
    ssh(master, 'cat > /tmp/blob2', Buffer.alloc(mib << 20, 'fleetbox'));
    copies.sshIn.push(performance.now() - t0);
    t0 = performance.now();
    const r = ssh(master, 'cat /tmp/blob2');
    copies.sshOut.push(performance.now() - t0);
    if (r.stdout.length !== mib << 20) throw new Error('ssh copy came back short');
    await m1.exec('rm -f /tmp/blob /tmp/blob2');
  }
  rmSync(dir, { recursive: true, force: true });
  const rate = (xs) => `${(mib / (pct(xs, 50) / 1000)).toFixed(1)} MiB/s`;
  const both = (xs) => `${ms(pct(xs, 50))} / ${ms(pct(xs, 99))}`;
  console.log(`p50 / p99 over ${ROUNDS} runs (fresh SSH: ${sshFresh.length}; execAll: ${all.length}); copies: median of 3`);
  printRows([
    ['exec `true`: member.exec over an exec port', both(portRt), 'p50 < 10 ms'],
    ['exec `true`: member.exec through qemu-ga (FLEETBOX_EXEC_PORTS=0)', both(agentRt)],
    ['exec `echo hello`: exec port', both(portOut)],
    ['exec `echo hello`: qemu-ga', both(agentOut)],
    [`exec \`true\`: exec port, back to back (guest CPU ${guestMsPerCall.toFixed(1)} ms a call)`, both(backToBack)],
    ['exec `true`: SSH, shared connection (old path)', both(sshMux)],
    ['exec `true`: SSH, fresh connection', both(sshFresh)],
    ['execAll(hostname) on 3 members', both(all)],
    [`copy ${mib} MiB in: copyTo (bulk port; the agent if it fails)`, rate(copies.agentIn)],
    [`copy ${mib} MiB out: copyFrom (bulk port; the agent if it fails)`, rate(copies.agentOut)],
    [`copy ${mib} MiB in: SSH cat`, rate(copies.sshIn)],
    [`copy ${mib} MiB out: SSH cat`, rate(copies.sshOut)],
  ]);
  ssh(['-S', mux, '-O', 'exit'], 'true');
} finally {
  spawnSync(CLI, ['rm', '--all', '--yes'], { env, stdio: 'ignore' });
  rmSync(home, { recursive: true, force: true });
}
