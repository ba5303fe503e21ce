import type { MemberChecker } from './types.js';

/**
 * Test-only fault injection, like crash points: FLEETBOX_HEALTH_FAULT=throw|hang adds a checker
 * that throws or never settles, so tests can watch a real holder survive a broken checker.
 */
export function faultChecker(kind: string | undefined): MemberChecker | undefined {
  if (kind === 'throw') {
    return {
      name: 'fault',
      check() {
        throw new Error('injected checker fault');
      },
    };
  }
  if (kind === 'hang') {
    return { name: 'fault', check: () => new Promise(() => {}) };
  }
  return undefined;
}
