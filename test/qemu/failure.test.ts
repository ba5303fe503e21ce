import { execFileSync, spawn } from 'node:child_process';
import { reconcileNetwork } from '../../dist/store/reconcile.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createQemuBackend } from '../../dist/backend/qemu/index.js';
import type { BackendContext, MemberHandle } from '../../dist/backend/types.js';
import type { ClusterNetwork } from '../../dist/net/types.js';
import type { Store } from '../../dist/store/layout.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { cannotBootVms, cleanup, memberConfig, memoryLogger, namespaceExists, reportSkip, vmStore } from './harness.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/start-member.mjs', import.meta.url));
const skip = reportSkip('qemu failure tests', cannotBootVms());

/** Resolves when `check` holds, polling with a deadline; false when the deadline passed. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe.skipIf(skip)('qemu backend: failing guests', () => {
  let store: Store | undefined;
  const handles: MemberHandle[] = [];
  const networks: ClusterNetwork[] = [];

  afterEach(async () => {
    await cleanup(store, handles, networks);
    store = undefined;
  });

  async function startWith(extraKernelArgs: string[], cluster: string, log = memoryLogger()) {
    store = vmStore();
    const backend = createQemuBackend({ extraKernelArgs });
    const network = await backend.openNetwork(store, cluster, log);
    networks.push(network);
    const config = memberConfig(cluster, `${cluster}-1`);
    execFileSync('mkdir', ['-p', store.memberDir(cluster, config.name)]);
    const ctx: BackendContext = { store, config, network: await network.attach(config.name), log, signal: new AbortController().signal };
    await backend.prepare(ctx, () => {});
    const handle = await backend.start(ctx);
    handles.push(handle);
    return { backend, ctx, handle, log };
  }

  it('a kernel that panics exits QEMU during boot, and diagnose shows the panic', async () => {
    // No such init in the initramfs: the kernel falls back to a root device, finds none, panics.
    const { backend, ctx, handle } = await startWith(['rdinit=/no-such-init'], 'panic');
    expect(await backend.probe(ctx, handle)).toBe(false);
    const exit = await Promise.race([handle.exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 60_000))]);
    expect(exit).not.toBe('timeout');
    expect(backend.diagnose(ctx)).toMatch(/Kernel panic/);
  });

  it('a guest that never becomes ready is seen by probe and diagnose, and stop escalates', async () => {
    // A shell as init: the kernel boots, but our init never runs, so no marker and no SSH.
    const { backend, ctx, handle, log } = await startWith(['rdinit=/bin/sh'], 'stuck');
    const deadline = Date.now() + 8_000;
    while (Date.now() < deadline) {
      expect(await backend.probe(ctx, handle)).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(isProcessAlive(handle.pid)).toBe(true);
    expect(backend.diagnose(ctx)).not.toContain('FLEETBOX_READY');
    const t0 = Date.now();
    await backend.stop(ctx, handle, 10_000);
    // No power-button handler to press: straight to QMP quit instead of waiting out the timeout.
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(isProcessAlive(handle.pid)).toBe(false);
    const steps = log.lines.filter((l) => l.event === 'qemu_stop_step').map((l) => l.fields?.step);
    expect(steps).toEqual(['quit']);
  });

  it('a QEMU that answers nothing is stopped by escalating to signals', async () => {
    const { backend, ctx, handle, log } = await startWith([], 'frozen');
    // A stopped process neither answers QMP nor acts on SIGTERM; only SIGKILL ends it.
    process.kill(handle.pid, 'SIGSTOP');
    const t0 = Date.now();
    await backend.stop(ctx, handle, 1_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(isProcessAlive(handle.pid)).toBe(false);
    expect(await handle.exited).toMatchObject({ signal: 'SIGKILL' });
    const steps = log.lines.filter((l) => l.event === 'qemu_stop_step').map((l) => l.fields?.step);
    expect(steps).toEqual(['quit', 'SIGTERM', 'SIGKILL']);
  });
});

describe.skipIf(skip)('qemu backend: QEMU dies with its starter', () => {
  beforeAll(() => {
    // The fixture is plain node: it needs the built backend, fresh.
    const built = `${ROOT}dist/backend/qemu/index.js`;
    const newestSource = Math.max(
      ...['src/backend/qemu', 'src/net', 'src/image'].flatMap((dir) =>
        readdirSync(`${ROOT}${dir}`).map((file) => statSync(`${ROOT}${dir}/${file}`).mtimeMs),
      ),
    );
    if (!existsSync(built) || statSync(built).mtimeMs < newestSource) {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
    }
  }, 180_000);

  let store: Store | undefined;
  afterEach(async () => {
    await cleanup(store, [], []);
    store = undefined;
  });

  it('SIGKILL of the starting process leaves no QEMU behind (pdeathsig through ip netns exec)', async () => {
    store = vmStore();
    const child = spawn(process.execPath, [FIXTURE, store.home, 'orphan', 'orphan-1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let started: { pid: number; namespace: string } | undefined;
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`fixture exited (${code}) before starting QEMU`)));
      });
      started = JSON.parse(line) as { pid: number; namespace: string };
      expect(isProcessAlive(started.pid)).toBe(true);
      expect(statSync(`/proc/${started.pid}/exe`).isFile()).toBe(true);
      child.kill('SIGKILL');
      await exited;
      const pid = started.pid;
      // Gone from /proc, or a zombie waiting for a reaper: either way no QEMU runs any more.
      expect(await until(() => !isProcessAlive(pid), 2_000)).toBe(true);
    } finally {
      if (started && isProcessAlive(started.pid)) process.kill(started.pid, 'SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    // The dead starter's network is what reconcile cleans up.
    expect(reconcileNetwork(store, 'orphan')).toBe('released');
    expect(namespaceExists(started.namespace)).toBe(false);
  });
});
