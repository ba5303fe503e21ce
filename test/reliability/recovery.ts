import { rmSync } from 'node:fs';
import { expect } from 'vitest';
import type { MemberView } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { cli, expectLsTruthful, settle } from './harness.js';
import { assertNoLeftovers } from './leftovers.js';

export const RECOVERY_HELD = 'next `ls` truthful (no invisible process), next `up` runs every member, `rm --all` leaves nothing';

/**
 * What must hold after any crash (issue #7, part 1): the next `fleetbox ls` is correct, the
 * next `up` works, and `fleetbox rm --all` leaves zero processes, sockets, pidfiles, namespaces
 * and taps. Removes the store directory at the end unless told not to (a mount point).
 */
export async function expectRecovery(store: Store, cluster: string, count: number, removeHome = true, backend = 'process'): Promise<void> {
  await settle(store);
  await expectLsTruthful(store);
  // The harness's kill timer, not a speed bar: real VMs under TCG on a loaded 2-core machine
  // may take longer than a minute to boot two at once (the crash step gets the same 120 s).
  const again = await cli(store, ['up', cluster, '-n', String(count), '--backend', backend, '--json'], {}, backend === 'qemu' ? 120_000 : 60_000);
  expect(again.code, again.stderr).toBe(0);
  const members = JSON.parse(again.stdout) as MemberView[];
  expect(members.map((m) => m.state)).toEqual(Array(count).fill('running'));
  const views = await expectLsTruthful(store);
  expect(views.filter((v) => v.state === 'running').map((v) => v.name).sort()).toEqual(members.map((m) => m.name).sort());
  const rm = await cli(store, ['rm', '--all', '--yes']);
  expect(rm.code, rm.stderr).toBe(0);
  await assertNoLeftovers(store);
  if (removeHome) rmSync(store.home, { recursive: true, force: true });
}
