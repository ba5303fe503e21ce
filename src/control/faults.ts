import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { FaultReplySchema, MAX_DELAY_MS, RATE_PATTERN, type Fault, type NetworkShape } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import { clusterOf, validateName } from '../store/names.js';
import { request } from './client.js';

export type FaultOp = 'partition' | 'isolate' | 'delay' | 'pause' | 'resume' | 'crash' | 'heal' | 'list';

export interface FaultOrder {
  op: FaultOp;
  /** partition: two or more sides of member names. */
  sides?: string[][];
  /** isolate, pause, resume: these members; heal: faults touching them (none: every fault). */
  members?: string[];
  /** delay: the shape of what the members send. */
  shape?: NetworkShape;
  /** delay: only toward these members (none: toward everyone). */
  to?: string[];
}

/** Checks a shape: numbers in range, a rate tc understands, something to do. */
function checkShape(shape: NetworkShape | undefined): void {
  if (!shape) throw new FleetboxError('usage', 'a delay needs --ms, --loss or --rate: fleetbox fault delay db-2 --ms 200');
  const ms = (what: string, value: number) => {
    if (!Number.isFinite(value) || value < 0 || value > MAX_DELAY_MS) throw new FleetboxError('usage', `${what} must be between 0 and ${MAX_DELAY_MS} ms, not ${value}`);
  };
  ms('the delay', shape.delayMs);
  ms('the jitter', shape.jitterMs);
  if (!Number.isFinite(shape.lossPercent) || shape.lossPercent < 0 || shape.lossPercent > 100) {
    throw new FleetboxError('usage', `the loss must be a percentage between 0 and 100, not ${shape.lossPercent}`);
  }
  if (shape.rate !== undefined && !RATE_PATTERN.test(shape.rate)) throw new FleetboxError('usage', `'${shape.rate}' is not a rate; give e.g. 1mbit, 500kbit or 10mbps`);
  if (shape.jitterMs > 0 && shape.delayMs === 0) throw new FleetboxError('usage', 'a jitter needs a delay to vary: add --ms');
  if (shape.delayMs === 0 && shape.lossPercent === 0 && shape.rate === undefined) {
    throw new FleetboxError('usage', "a delay needs --ms, --loss or --rate (to end one: 'fleetbox fault heal <member>')");
  }
}

/**
 * Checks an order before anything is sent: one cluster, every name valid, nobody named twice, no
 * empty side. Returns the cluster. Errors are `usage` (exit 2) and nothing is applied.
 */
export function checkFaultOrder(order: FaultOrder): string {
  const names = [...(order.sides?.flat() ?? []), ...(order.members ?? []), ...(order.to ?? [])];
  if (order.op === 'partition') {
    if (!order.sides || order.sides.length < 2) throw new FleetboxError('usage', 'a partition needs two sides or more: fleetbox fault partition a-1 a-2 / a-3');
    if (order.sides.some((side) => side.length === 0)) throw new FleetboxError('usage', 'a side of the partition is empty; put at least one member on each side of /');
  } else if (order.op === 'delay') {
    if (!order.members || order.members.length === 0) throw new FleetboxError('usage', 'delay needs a member: fleetbox fault delay db-2 --ms 200');
    checkShape(order.shape);
    const self = order.to?.find((name) => order.members?.includes(name));
    if (self) throw new FleetboxError('usage', `${self} cannot be delayed toward itself; name other members after --to`);
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
      {
        cmd: 'fault',
        op: order.op,
        ...(order.sides && { sides: order.sides }),
        ...(order.members && { members: order.members }),
        ...(order.shape && { shape: order.shape }),
        ...(order.to && order.to.length > 0 && { to: order.to }),
      },
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
