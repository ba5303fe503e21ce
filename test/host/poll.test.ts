import { describe, expect, it } from 'vitest';
import { pollUntil } from '../../dist/host/poll.js';

describe('pollUntil', () => {
  it('resolves with the first answer that is not undefined (false and 0 count as answers)', async () => {
    let calls = 0;
    expect(await pollUntil(() => (++calls < 3 ? undefined : 'ready'), 5_000, 1)).toBe('ready');
    expect(calls).toBe(3);
    expect(await pollUntil(() => false, 1_000)).toBe(false);
    expect(await pollUntil(() => Promise.resolve(0), 1_000)).toBe(0);
  });

  it('resolves undefined after the deadline, having asked at least once past it', async () => {
    const asked: number[] = [];
    const started = Date.now();
    expect(await pollUntil(() => void asked.push(Date.now()), 50, 10)).toBeUndefined();
    expect(asked.length).toBeGreaterThan(1);
    expect((asked.at(-1) ?? 0) - started).toBeGreaterThan(50);
  });

  it('a poll that throws ends the wait with its error', async () => {
    await expect(pollUntil(() => Promise.reject(new Error('gone')), 1_000)).rejects.toThrow('gone');
  });
});
