import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateSkew } from '../../dist/health/skew.js';

describe('estimateSkew', () => {
  it('takes the median of the samples, so one delayed sample does not skew the estimate', () => {
    const estimate = estimateSkew([
      { sentAt: 1000, receivedAt: 1010, remoteAt: 3005 },
      { sentAt: 2000, receivedAt: 2010, remoteAt: 4005 },
      { sentAt: 3000, receivedAt: 3900, remoteAt: 5850 }, // stuck in a queue on the way back
    ]);
    expect(estimate?.offsetMs).toBe(2000);
    expect(estimate?.rttMs).toBe(10);
    expect(estimateSkew([])).toBeUndefined();
  });

  it('is within half the round trip of the true offset, whatever the delays', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e7, max: 1e7 }), fc.array(fc.tuple(fc.nat(1e6), fc.nat(500), fc.nat(500)), { minLength: 1, maxLength: 5 }), (offset, exchanges) => {
        const samples = exchanges.map(([start, up, down]) => ({ sentAt: start, remoteAt: start + up + offset, receivedAt: start + up + down }));
        const estimate = estimateSkew(samples);
        const worst = Math.max(...exchanges.map(([, up, down]) => (up + down) / 2));
        expect(Math.abs((estimate?.offsetMs ?? Infinity) - offset)).toBeLessThanOrEqual(worst);
      }),
    );
  });
});
