import { describe, expect, it } from 'vitest';
import { clusterOf, memberNames, validateName } from '../../dist/store/names.js';
import { isFleetboxError } from '../../dist/protocol/errors.js';

describe('validateName', () => {
  it.each(['web', 'web-2', 'a', '0x', 'a'.repeat(63)])('accepts %s', (name) => {
    expect(validateName(name)).toBe(name);
  });

  it.each(['../x', 'A', '', 'a'.repeat(64), 'has space', '-lead', 'a/b', 'a.b', 'é'])('refuses %j naming the rule', (name) => {
    let caught: unknown;
    try {
      validateName(name);
    } catch (error) {
      caught = error;
    }
    expect(isFleetboxError(caught, 'invalid_name')).toBe(true);
    expect((caught as Error).message).toMatch(/lowercase letters, digits and "-"/);
  });
});

describe('clusterOf', () => {
  it('strips one trailing -<digits>', () => {
    expect(clusterOf('web-2')).toBe('web');
    expect(clusterOf('web')).toBe('web');
    expect(clusterOf('db-1-3')).toBe('db-1');
    expect(clusterOf('web-x')).toBe('web-x');
  });

  it('names members cluster-1..n', () => {
    expect(memberNames('demo', 3)).toEqual(['demo-1', 'demo-2', 'demo-3']);
  });
});
