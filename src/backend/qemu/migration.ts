import { existsSync } from 'node:fs';
import { pollUntil } from '../../host/poll.js';
import { FleetboxError } from '../../protocol/errors.js';
import type { MemberHandle } from '../types.js';
import { QmpClient } from './qmp.js';

/*
 * Moving a guest's state through a file with QEMU's migration: a template's devices (its RAM
 * stays in a shared file), a snapshot's whole member. Each runs `exec:cat` in QEMU's place.
 */

const RESTORE_BUDGET_MS = 15_000;

/** `exec:` migration URIs go through /bin/sh: the path is single-quoted. */
export function shellQuote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

export async function waitFor<T>(what: string, budgetMs: number, poll: () => T | undefined | Promise<T | undefined>, gone?: () => boolean): Promise<T> {
  const value = await pollUntil(
    async () => {
      const answer = await poll();
      if (answer === undefined && gone?.()) throw new FleetboxError('boot_failed', `QEMU exited while ${what}`);
      return answer;
    },
    budgetMs,
    10,
  );
  if (value === undefined) throw new FleetboxError('boot_timeout', `${what} took longer than ${budgetMs} ms`);
  return value;
}

export async function qmpWhenUp(path: string, gone: () => boolean): Promise<QmpClient> {
  return waitFor('QEMU opened its QMP socket', 10_000, async () => (existsSync(path) ? await QmpClient.connect(path, 2_000).catch(() => undefined) : undefined), gone);
}

/** Polls query-migrate until it ends; throws with QEMU's words when it failed. */
export async function migrationDone(qmp: QmpClient, what: string, gone: () => boolean, budgetMs = RESTORE_BUDGET_MS): Promise<void> {
  await waitFor(what, budgetMs, async () => {
    const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (info.status === 'failed' || info.status === 'cancelled') throw new FleetboxError('io', `${what} failed: ${info['error-desc'] ?? info.status}`);
    return info.status === 'completed' ? true : undefined;
  }, gone);
}


/**
 * Restores `state` into a QEMU started with `-incoming defer` and runs it on, verified: QEMU
 * must report running. `ignoreShared`: the RAM is not in the state but in a file both map (a
 * template); otherwise the state carries all of it (a snapshot).
 */
export async function restoreIncoming(how: { qmpSocket: string; state: string; ignoreShared: boolean; handle: MemberHandle; what: string; member: string; budgetMs?: number }): Promise<void> {
  let exited = false;
  void how.handle.exited.then(() => (exited = true));
  const gone = () => exited;
  const qmp = await qmpWhenUp(how.qmpSocket, gone);
  try {
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: how.ignoreShared }] });
    await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(how.state)}` });
    await waitFor(how.what, how.budgetMs ?? RESTORE_BUDGET_MS, async () => {
      const status = ((await qmp.execute('query-status')) as { status?: string }).status;
      return status === 'paused' || status === 'postmigrate' || status === 'running' ? true : undefined;
    }, gone);
    const status = ((await qmp.execute('query-status')) as { status?: string }).status;
    if (status !== 'running') await qmp.execute('cont');
    const after = ((await qmp.execute('query-status')) as { status?: string }).status;
    if (after !== 'running') throw new FleetboxError('boot_failed', `${how.member}: QEMU reports ${after ?? 'nothing'} after ${how.what}`);
  } finally {
    qmp.close();
  }
}
