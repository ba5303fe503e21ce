import { InvalidArgumentError } from 'commander';

/**
 * The command line's number parsers, for commander options and arguments. Each refuses anything
 * but plain digits (no "1e3", "0x10", " 5" or "") and says the range in its message.
 */

/** A whole number from `min` to `max`; `what` names it in the message (default "a whole number"). */
export function wholeNumber(min: number, max: number, what = 'a whole number'): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected ${what} from ${min} to ${max}`);
    return n;
  };
}

/** A whole number of at least 1 (member counts). */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError(`expected a whole number of at least 1, got ${value}`);
  return n;
}

/** A whole number, 0 included, with no upper bound. */
export function parseWhole(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

/** Seconds, fractions allowed: more than 0 and at most `max`. */
export function seconds(max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || n <= 0 || n > max) throw new InvalidArgumentError(`expected seconds, more than 0 and at most ${max}`);
    return n;
  };
}
