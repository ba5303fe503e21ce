import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createQemuBackend } from '../../dist/backend/qemu/index.js';
import { qmpSocketPath } from '../../dist/backend/qemu/paths.js';
import { sshCommand } from '../../dist/backend/qemu/ssh.js';
import type { Backend, BackendContext, MemberHandle } from '../../dist/backend/types.js';
import type { ClusterNetwork } from '../../dist/net/types.js';
import type { Store } from '../../dist/store/layout.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { bootMember, cannotBootVms, cleanup, memberConfig, memoryLogger, namespaceExists, reportSkip, vmStore } from './harness.js';

const skip = reportSkip('qemu boot tests', cannotBootVms());

/** A command in the guest through the backend's own exec (the guest agent), output as text. */
async function run(backend: Backend, ctx: BackendContext, command: string, input?: Buffer) {
  const r = await backend.exec(ctx, command, { timeoutMs: 30_000, ...(input && { input }) });
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exitCode: r.exitCode, raw: r.stdout };
}

describe.skipIf(skip)('qemu backend: real microVMs', () => {
  let store: Store | undefined;
  const handles: MemberHandle[] = [];
  const networks: ClusterNetwork[] = [];

  afterEach(async () => {
    await cleanup(store, handles, networks);
    store = undefined;
  });

  it('boots one member to running, runs commands through its agent and over SSH, and powers it off gracefully', async () => {
    store = vmStore();
    const log = memoryLogger();
    const backend = createQemuBackend();
    const network = await backend.openNetwork(store, 'solo', log);
    networks.push(network);
    const { ctx, handle, bootMs } = await bootMember(backend, network, store, memberConfig('solo', 'solo-1'), log, handles);
    expect(bootMs).toBeLessThan(30_000);
    expect(readFileSync(store.serialLogPath('solo', 'solo-1'), 'utf8')).toContain('FLEETBOX_READY solo-1');

    const uname = await run(backend, ctx, 'uname -a; hostname; ip -4 -o addr show eth0; pwd');
    expect(uname.exitCode).toBe(0);
    expect(uname.stdout).toMatch(/^Linux solo-1 6\.\d+/);
    expect(uname.stdout).toContain(`${ctx.network.ip}/24`);
    expect(uname.stdout).toMatch(/\/root\n$/); // where an SSH command starts too
    const failing = await run(backend, ctx, 'echo oops >&2; exit 3');
    expect(failing).toMatchObject({ exitCode: 3, stderr: 'oops\n' });
    // Binary-safe both ways: bytes in as stdin, the same bytes out.
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 255));
    expect((await run(backend, ctx, 'cat', bytes)).raw.equals(bytes)).toBe(true);
    // The interactive path (a terminal session, forwards) stays SSH: it must still get in.
    const { file, args } = sshCommand(store, ctx.network, ['hostname'], { tty: false });
    expect(execFileSync(file, args, { encoding: 'utf8', timeout: 30_000 })).toBe('solo-1\n');

    const t0 = Date.now();
    await backend.stop(ctx, handle, 10_000);
    const stopMs = Date.now() - t0;
    expect(stopMs).toBeLessThan(10_000);
    expect(await handle.exited).toEqual({ code: 0, signal: null });
    expect(isProcessAlive(handle.pid)).toBe(false);
    // The graceful path was enough: no escalation step after the power button.
    const steps = log.lines.filter((l) => l.event === 'qemu_stop_step').map((l) => l.fields?.step);
    expect(steps).toEqual(['powerdown']);
    expect(readFileSync(store.serialLogPath('solo', 'solo-1'), 'utf8')).toContain('FLEETBOX_POWERDOWN solo-1');
    expect(existsSync(qmpSocketPath(store, 'solo-1'))).toBe(false);

    await network.detach('solo-1');
    const namespace = ctx.network.namespace ?? '';
    await network.close();
    networks.length = 0;
    expect(namespaceExists(namespace)).toBe(false);
  });

  it('boots two members concurrently that ping each other over the bridge', async () => {
    store = vmStore();
    const log = memoryLogger();
    const backend = createQemuBackend();
    const network = await backend.openNetwork(store, 'pair', log);
    networks.push(network);
    const s = store;
    const [a, b] = await Promise.all([
      bootMember(backend, network, s, memberConfig('pair', 'pair-1'), log, handles),
      bootMember(backend, network, s, memberConfig('pair', 'pair-2'), log, handles),
    ]);
    expect(a.ctx.network.ip).not.toBe(b.ctx.network.ip);
    const ping = await run(backend, a.ctx, `ping -c 2 -W 2 ${b.ctx.network.ip}`);
    expect(ping.stdout).toContain('2 packets received');
    const back = await run(backend, b.ctx, `ping -c 1 -W 2 ${a.ctx.network.ip} && ping -c 1 -W 2 ${b.ctx.network.gateway}`);
    expect(back.exitCode).toBe(0);
    await Promise.all([backend.stop(a.ctx, a.handle, 10_000), backend.stop(b.ctx, b.handle, 10_000)]);
  });

  it("keeps a member's disk, with its contents, across stop and start", async () => {
    store = vmStore();
    const log = memoryLogger();
    const backend = createQemuBackend();
    const network = await backend.openNetwork(store, 'disk', log);
    networks.push(network);
    const config = memberConfig('disk', 'disk-1', { diskMiB: 64 });
    const first = await bootMember(backend, network, store, config, log, handles);
    const write = await run(backend, first.ctx, 'mount | grep " /data " && echo kept-across-restarts > /data/proof');
    expect(write.exitCode, write.stderr).toBe(0);
    await backend.stop(first.ctx, first.handle, 10_000);
    await network.detach('disk-1');

    const second = await bootMember(backend, network, store, config, log, handles);
    expect(second.ctx.network.ip).toBe(first.ctx.network.ip); // re-join keeps the address
    const read = await run(backend, second.ctx, 'cat /data/proof');
    expect(read.stdout).toBe('kept-across-restarts\n');
    await backend.stop(second.ctx, second.handle, 10_000);
  });
});
