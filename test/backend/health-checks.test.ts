import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { portCheck } from '../../dist/backend/process/port-check.js';
import { hypervisorCheck } from '../../dist/backend/qemu/hypervisor-check.js';
import type { BackendContext } from '../../dist/backend/types.js';
import { runCheck } from '../../dist/holder/checkers/run.js';
import { Store } from '../../dist/store/layout.js';
import { scratch } from '../scratch.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function listen(server: Server, where: number | string): Promise<Server> {
  servers.push(server);
  return new Promise((resolve) => {
    if (typeof where === 'string') server.listen(where, () => resolve(server));
    else server.listen(where, '127.0.0.1', () => resolve(server));
  });
}

const store = new Store(scratch()).ensure();
const never = new AbortController().signal;
/** A member's process as the holder hands it to checks: this test process. */
const member = { pid: process.pid, startTime: '0', exited: new Promise<never>(() => {}) };

/** Just enough of a member for a backend's health check. */
function ctx(port = 1): BackendContext {
  return {
    store,
    config: { name: 'web-1', cluster: 'web', port } as BackendContext['config'],
    network: { ip: '127.0.0.1', prefix: 8, gateway: null, namespace: null, tap: null, mac: '02:00:00:00:00:01' },
    log: { info() {}, warn() {}, error() {} },
    signal: never,
  };
}

describe("backends' checks inside members", () => {
  it('process port: passes while something listens on the member port (its own, in a cgroup), fails when nothing does', async () => {
    const server = await listen(createServer((socket) => socket.destroy()), 0);
    const port = (server.address() as { port: number }).port;
    const handle = member;
    expect(portCheck.checkNow(ctx(port), handle)).toMatchObject({ status: 'pass', detail: `127.0.0.1:${port} is listening` });
    // A member in a cgroup that holds none of the listening processes: someone else has its port.
    const elsewhere = { ...handle, cgroup: join(scratch(), 'no-such-cgroup') };
    expect(portCheck.checkNow(ctx(port), elsewhere)).toMatchObject({ status: 'fail', detail: expect.stringContaining("is held by a process that is not web-1's") });
    await new Promise((resolve) => server.close(resolve));
    // A health round reads the kernel's table at most once a second for all members.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(portCheck.checkNow(ctx(port), handle)).toMatchObject({ status: 'fail', detail: `nothing listens on 127.0.0.1:${port}` });
  });

  it('qemu hypervisor: speaks QMP (greeting, capabilities, query-status) and reads the VM state; no socket is a skip', async () => {
    const path = `${store.runDir}/qmp-test.sock`;
    let vm = 'running';
    await listen(
      createServer((socket) => {
        socket.write('{"QMP":{"version":{},"capabilities":[]}}\r\n');
        socket.on('data', (data) => {
          const text = data.toString();
          const id = /"id":\s*(\d+)/.exec(text)?.[1];
          if (text.includes('qmp_capabilities')) socket.write(`{"return":{},"id":${id}}\r\n{"event":"NOISE","data":{}}\r\n`);
          if (text.includes('query-status')) socket.write(`{"return":{"status":"${vm}","running":${vm === 'running'}},"id":${id}}\r\n`);
        });
      }),
      path,
    );
    const check = hypervisorCheck(() => path);
    expect(await check.check(ctx(), never, member)).toMatchObject({ status: 'pass' });
    vm = 'paused';
    expect(await check.check(ctx(), never, member)).toMatchObject({ status: 'fail', detail: 'hypervisor answers but the VM is paused' });
    expect((await hypervisorCheck(() => `${store.runDir}/absent.sock`).check(ctx(), never, member)).status).toBe('skip');
  });

  it('qemu hypervisor: a QMP socket that never greets fails at the deadline', async () => {
    const path = `${store.runDir}/qmp-mute.sock`;
    await listen(createServer(() => {}), path);
    const check = hypervisorCheck(() => path);
    const result = await runCheck({ name: check.name, check: ({ signal }) => check.check(ctx(), signal, member) }, (signal) => ({ store, signal }), { timeoutMs: 150, signal: never });
    expect(result.status).toBe('fail');
  });
});
