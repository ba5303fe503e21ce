import { diskSpaceChecker } from './disk-space.js';
import { faultChecker } from './fault.js';
import { portChecker } from './port.js';
import { processAliveChecker } from './process-alive.js';
import { qmpChecker } from './qmp.js';
import type { HolderChecker, MemberChecker } from './types.js';

export type { Checker, CheckOutcome, HolderChecker, MemberChecker, MemberTarget } from './types.js';
export { runCheck } from './run.js';

/** The checkers every holder runs (DESIGN §8): process alive, hypervisor, service port, disk. */
export function defaultCheckers(env: NodeJS.ProcessEnv = process.env): { member: MemberChecker[]; holder: HolderChecker[] } {
  const fault = faultChecker(env.FLEETBOX_HEALTH_FAULT);
  return {
    member: [processAliveChecker, qmpChecker(), portChecker, ...(fault ? [fault] : [])],
    holder: [diskSpaceChecker()],
  };
}
