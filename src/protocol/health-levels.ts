/**
 * Plain constants of fleet health (no zod here: the local `status` path imports this at run time).
 */

/** red: act now; amber: watch or wait; green: healthy; grey: stopped on purpose, not counted as a problem. */
export const LEVELS = ['red', 'amber', 'green', 'grey'] as const;
export type Level = (typeof LEVELS)[number];

export const CHECK_STATUSES = ['pass', 'warn', 'fail', 'skip'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** Why a row has its colour. Order inside a colour is the order rows are listed in. */
export const HEALTH_KINDS = [
  // red
  'stale',
  'holder_gone',
  'error',
  'failing',
  'host_unreachable',
  'host_bad_answer',
  // amber
  'unresponsive',
  'grace',
  'stopping',
  'degraded',
  'no_heartbeat',
  'clock_skew',
  // green
  'healthy',
  // grey
  'stopped',
] as const;
export type HealthKind = (typeof HEALTH_KINDS)[number];

const LEVEL_RANK: Record<Level, number> = { red: 0, amber: 1, green: 2, grey: 3 };

export function levelRank(level: Level): number {
  return LEVEL_RANK[level];
}

export function kindRank(kind: HealthKind): number {
  return HEALTH_KINDS.indexOf(kind);
}

/** The worse of two levels; grey (stopped on purpose) never outranks a real colour. */
export function worst(a: Level, b: Level): Level {
  return levelRank(a) <= levelRank(b) ? a : b;
}

/**
 * Member states in which a holder is (still) responsible for a process. The one definition of
 * "active" for health: a member in one of these states without a live holder has lost it.
 */
export const ACTIVE_STATES: ReadonlySet<string> = new Set(['downloading', 'starting', 'running', 'stopping']);

export function isActiveState(state: string): boolean {
  return ACTIVE_STATES.has(state);
}
