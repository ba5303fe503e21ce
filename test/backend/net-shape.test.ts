import { describe, expect, it } from 'vitest';
import { netemArgs, shapeScript, verifyShape } from '../../dist/backend/qemu/net-shape.js';

const result = (stdout: string, exitCode = 0, stderr = '') => ({ stdout: Buffer.from(stdout), stderr: Buffer.from(stderr), exitCode, truncated: false });

describe('traffic shaping in the guest (netem through the agent)', () => {
  it('says a shape in netem words, and refuses one with nothing to do', () => {
    expect(netemArgs({ delayMs: 200, jitterMs: 50, lossPercent: 10, rate: '1mbit' })).toBe('delay 200ms 50ms loss 10% rate 1mbit');
    expect(netemArgs({ delayMs: 0, jitterMs: 0, lossPercent: 100 })).toBe('loss 100%');
    expect(() => netemArgs({ delayMs: 0, jitterMs: 0, lossPercent: 0 })).toThrow(/needs a delay, a loss or a rate/);
  });

  it('shapes everything at the root, or with destinations only what goes to them (one u32 filter each)', () => {
    const all = shapeScript({ delayMs: 100, jitterMs: 0, lossPercent: 0 });
    expect(all).toContain('$TC qdisc add dev $DEV root handle 1: netem delay 100ms');
    expect(all).not.toContain('prio bands');
    const some = shapeScript({ delayMs: 100, jitterMs: 0, lossPercent: 0, toAddresses: ['10.1.2.3', '10.1.2.4'] });
    expect(some).toContain('root handle 1: prio bands 4');
    expect(some.match(/u32 match ip dst 10\.1\.2\.[34]\/32 flowid 1:4/g)).toHaveLength(2);
    expect(() => shapeScript({ delayMs: 1, jitterMs: 0, lossPercent: 0, toAddresses: ['10.1.2.3; reboot'] })).toThrow(/not an IPv4 address/);
    // Removal only deletes and reports.
    expect(shapeScript(undefined)).not.toMatch(/qdisc add/);
  });

  it('believes the guest only when tc shows the shape (or its absence), and passes tc\'s words on', () => {
    const shape = { delayMs: 100, jitterMs: 0, lossPercent: 0, toAddresses: ['10.0.0.2'] };
    const shown = 'dev eth0\nqdisc prio 1: root refcnt 2 bands 4\nqdisc netem 40: parent 1:4 limit 1000 delay 100ms\nfilter parent 1: protocol ip pref 1 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 flowid 1:4 not_in_hw\n  match 0a000002/ffffffff at 16\n';
    expect(() => verifyShape('a-1', shape, result(shown))).not.toThrow();
    expect(() => verifyShape('a-1', { ...shape, toAddresses: ['10.0.0.3'] }, result(shown))).toThrow(/no filter for 10\.0\.0\.3/);
    expect(() => verifyShape('a-1', shape, result('dev eth0\nqdisc fq_codel 0: root\n'))).toThrow(/no netem qdisc/);
    expect(() => verifyShape('a-1', shape, result('', 2, 'Error: Specified qdisc kind is unknown.'))).toThrow(
      /a-1: could not shape its traffic with tc netem: Error: Specified qdisc kind is unknown\./,
    );
    expect(() => verifyShape('a-1', undefined, result('dev eth0\nqdisc fq_codel 0: root\n'))).not.toThrow();
    expect(() => verifyShape('a-1', undefined, result(shown))).toThrow(/netem is still in force/);
  });
});
