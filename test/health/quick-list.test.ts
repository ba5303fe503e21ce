import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStatus } from '../../dist/control/status.js';
import { stopMember } from '../../dist/control/stop.js';
import { up } from '../../dist/control/up.js';
import { listQuickly } from '../../dist/health/quick-list.js';
import type { Store } from '../../dist/store/layout.js';
import { listMembers } from '../../dist/store/members.js';
import { destroyStore, tempStore } from '../helpers.js';

let store: Store;

beforeAll(async () => {
  store = tempStore();
  await up(store, { names: ['ql'], count: 3, spec: { backend: 'process' } });
  await up(store, { names: ['qm'], count: 2, spec: { backend: 'process' } });
}, 60_000);

afterAll(async () => {
  await destroyStore(store);
});

describe("ls's quick path (every holder alive and answering)", () => {
  it('gives exactly the views the careful path gives, member for member', async () => {
    const careful = await Promise.all(listMembers(store).map((ref) => getStatus(store, ref)));
    const quick = await listQuickly(store);
    expect(quick).toHaveLength(5);
    expect(quick).toEqual(careful);
  });

  it('steps aside (undefined) as soon as one member has no live holder, so reconcile and the disk speak', async () => {
    await stopMember(store, { cluster: 'qm', name: 'qm-2' });
    expect(await listQuickly(store)).toBeUndefined();
  });
});
