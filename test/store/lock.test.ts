import { scratch } from '../scratch.js';
import { describe, expect, it } from 'vitest';
import { withLock } from '../../dist/store/lock.js';

describe('withLock', () => {
  it('serialises critical sections', async () => {
    const lock = `${scratch()}/c.lock`;
    const order: string[] = [];
    const section = (id: string) =>
      withLock(lock, async () => {
        order.push(`${id}-in`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        order.push(`${id}-out`);
      });
    await Promise.all([section('a'), section('b'), section('c')]);
    for (let i = 0; i < order.length; i += 2) {
      expect(order[i]?.replace('-in', '')).toBe(order[i + 1]?.replace('-out', ''));
    }
  });

  it('gives up with busy when the lock is held too long', async () => {
    const lock = `${scratch()}/c.lock`;
    let release!: () => void;
    const held = withLock(lock, () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(withLock(lock, async () => 1, { waitMs: 200 })).rejects.toMatchObject({ code: 'busy' });
    release();
    await held;
    await expect(withLock(lock, async () => 2)).resolves.toBe(2);
  });
});
