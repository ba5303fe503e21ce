import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { FaultReplySchema, type Fault } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import { clusterOf, validateName } from '../store/names.js';
import { request } from './client.js';

export type FaultOp = 'partition' | 'isolate' | 'pause' | 'resume' | 'crash' | 'heal' | 'list';

export interface FaultOrder {
  op: FaultOp;
  /** partition: two or more sides of member names. */
  sides?: string[][];
  /** isolate, pause, resume: these members; heal: faults touching them (none: every fault). */
  members?: string[];
}

/**
 * Checks an order before anything is sent: one cluster, every name valid, nobody named twice, no
 * empty side. Returns the cluster. Errors are `usage` (exit 2) and nothing is applied.
 */
export function checkFaultOrder(order: FaultOrder): string {
  const names = [...(order.sides?.flat() ?? []), ...(order.members ?? [])];
  if (order.op === 'partition') {
    if (!order.sides || order.sides.length < 2) throw new FleetboxError('usage', 'a partition needs two sides or more: fleetbox fault partition a-1 a-2 / a-3');
    if (order.sides.some((side) => side.length === 0)) throw new FleetboxError('usage', 'a side of the partition is empty; put at least one member on each side of /');
  } else if (order.op !== 'heal' && order.op !== 'list' && names.length === 0) {
    throw new FleetboxError('usage', `${order.op} needs a member`);
  }
  for (const name of names) validateName(name, 'member name');
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new FleetboxError('usage', `${name} is named twice`);
    seen.add(name);
  }
  const clusters = [...new Set(names.map((n) => clusterOf(n)))];
  if (clusters.length > 1) throw new FleetboxError('usage', `members of one cluster only, not of ${clusters.join(' and ')}`);
  const cluster = clusters[0];
  if (cluster === undefined) throw new FleetboxError('usage', 'name a member');
  return cluster;
}

/**
 * Sends a fault order to the cluster's holder through one member's socket (`via`), and returns
 * the faults in force once it is applied (verified by the holder).
 */
export async function sendFaultOrder(store: Store, via: string, order: FaultOrder): Promise<{ faults: Fault[]; healed?: Fault[] }> {
  try {
    return await request(
      store.memberSocketPath(via),
      { cmd: 'fault', op: order.op, ...(order.sides && { sides: order.sides }), ...(order.members && { members: order.members }) },
      FaultReplySchema,
      { timeoutMs: 60_000, startWithinMs: 10_000 },
    );
  } catch (error) {
    if (isFleetboxError(error, 'unreachable')) {
      throw new FleetboxError('not_running', `${via} is not running; faults apply to running members ('fleetbox up ${via}' first)`, { cause: error });
    }
    throw error;
  }
}
