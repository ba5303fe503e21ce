import { rmSync } from 'node:fs';
import { endCgroup } from '../../host/cgroup.js';
import { signalRecorded } from '../../host/proc.js';
import type { Logger } from '../../host/logger.js';
import type { ExitInfo, MemberHandle } from '../types.js';
import { QmpClient } from './qmp.js';

/** Resolves true if the member's process exits within `ms`, false otherwise. */
function exitsWithin(handle: MemberHandle, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    handle.exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function qmpCommand(socket: string, command: string, log: Logger, member: string): Promise<void> {
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.connect(socket, 1_000);
    await client.execute(command);
  } catch (error) {
    // QEMU may close the socket as it quits, before replying: the exit wait below judges.
    log.warn('qemu_stop_qmp_failed', { member, command, message: (error as Error).message });
  } finally {
    client?.close();
  }
}

/**
 * Stops a QEMU member, escalating until its process is gone:
 * 1. QMP system_powerdown: the guest init flushes the disk and powers off; QEMU exits (~0.2 s).
 *    Skipped for a guest whose init has not armed its power-button handler yet (`guestReady`
 *    false): pressing the button would only burn the whole timeout.
 * 2. QMP quit, for a guest that cannot react (still booting, hung).
 * 3. SIGTERM, then 4. SIGKILL, for a QEMU that does not answer QMP.
 * Signals go only to the recorded process (PID and start time), never to a reused PID.
 */
export async function stopQemu(options: {
  handle: MemberHandle;
  qmpSocket: string;
  timeoutMs: number;
  log: Logger;
  member: string;
  guestReady: boolean;
}): Promise<ExitInfo> {
  const { handle, qmpSocket, timeoutMs, log, member, guestReady } = options;
  const started = Date.now();
  const step = async (name: string, act: () => Promise<void> | void, waitMs: number): Promise<boolean> => {
    log.info('qemu_stop_step', { member, step: name, afterMs: Date.now() - started });
    await act();
    return exitsWithin(handle, waitMs);
  };
  try {
    if (await exitsWithin(handle, 0)) return await handle.exited;
    if (guestReady && (await step('powerdown', () => qmpCommand(qmpSocket, 'system_powerdown', log, member), timeoutMs))) {
      return await handle.exited;
    }
    if (await step('quit', () => qmpCommand(qmpSocket, 'quit', log, member), 2_000)) return await handle.exited;
    if (await step('SIGTERM', () => void signalRecorded(handle.pid, handle.startTime, 'SIGTERM'), 2_000)) return await handle.exited;
    await step('SIGKILL', () => void signalRecorded(handle.pid, handle.startTime, 'SIGKILL'), 0);
    return await handle.exited;
  } finally {
    log.info('qemu_stopped', { member, ms: Date.now() - started });
    // QEMU removes its socket on a clean exit only.
    rmSync(qmpSocket, { force: true });
    await endCgroup({ log, config: { name: member } }, handle);
  }
}
