import type { Holder } from './holder.js';

export interface HealthLoop {
  stop(): void;
}

/**
 * Runs the holder's health checkers and heartbeats on a poll period (DESIGN §8).
 * Started once the holder's members are adopted; stopped at shutdown.
 */
export function startHealthLoop(_holder: Holder): HealthLoop {
  return { stop() {} };
}
