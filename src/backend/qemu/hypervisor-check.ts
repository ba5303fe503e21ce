import { existsSync } from 'node:fs';
import type { BackendContext, WaitingHealthCheck } from '../types.js';
import { QmpClient } from './qmp.js';

/**
 * The hypervisor answers QMP and the VM runs (query-status). The connection is closed as soon as
 * the answer is in: QMP serves one client at a time in some configurations. A missing socket is
 * a `skip`, never a false alarm.
 */
export function hypervisorCheck(qmpSocketOf: (ctx: BackendContext) => string): WaitingHealthCheck {
  return {
    name: 'hypervisor',
    async check(ctx, signal) {
      const path = qmpSocketOf(ctx);
      if (!existsSync(path)) return { status: 'skip', detail: 'no QMP socket found' };
      let client: QmpClient | undefined;
      const onAbort = () => client?.close();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        client = await QmpClient.connect(path, 5_000);
        const status = (await client.execute('query-status')) as { status?: string; running?: boolean };
        const vm = status.status ?? 'unknown';
        return status.running === true || vm === 'running'
          ? { status: 'pass', detail: 'hypervisor answers; VM running' }
          : { status: 'fail', detail: `hypervisor answers but the VM is ${vm}` };
      } catch (error) {
        return { status: 'fail', detail: `QMP: ${(error as Error).message}` };
      } finally {
        signal.removeEventListener('abort', onAbort);
        client?.close();
      }
    },
  };
}
