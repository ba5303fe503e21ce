import { diskSpaceChecker } from './disk-space.js';
import { faultChecker } from './fault.js';
import { processAliveChecker } from './process-alive.js';
import type { HolderChecker, MemberChecker } from './types.js';

export type { Checker, CheckOutcome, HolderChecker, InsideCheck, MemberChecker, MemberTarget } from './types.js';
export { runCheck } from './run.js';

/**
 * The checkers every holder runs whatever the backend (DESIGN §8): process alive, disk. What
 * differs per backend (hypervisor, service port, guest agent, SSH) is the backend's `healthChecks`.
 */
export function defaultCheckers(env: NodeJS.ProcessEnv = process.env): { member: MemberChecker[]; holder: HolderChecker[] } {
  const fault = faultChecker(env.FLEETBOX_HEALTH_FAULT);
  return {
    member: [processAliveChecker, ...(fault ? [fault] : [])],
    holder: [diskSpaceChecker()],
  };
}
