import { FleetboxError } from '../../protocol/errors.js';
import type { NetworkShape } from '../../protocol/schemas.js';
import type { AppliedShape } from '../types.js';
import { GUEST_TOOLS, SHAPING_MODULES } from '../../image/guest-init.js';
import type { AgentExecResult } from './agent-exec.js';

/*
 * Egress shaping inside a guest with netem, driven through the agent (the host kernel has no
 * sch_netem; the guest's has it as a module). Everything the member sends is shaped, or with
 * `toAddresses` only what it sends to them: a prio qdisc with a fourth band that only u32
 * filters on those destinations reach, and netem under that band.
 */

/** The prio band (1:4) and netem handle used for shaping toward chosen addresses. */
const BAND = '1:4';

/**
 * Sets up `$DEV` (the guest's cluster interface), `$TC` (the root's own tc, else the one fleetbox
 * copied in, started through the copied loader) and loads the shaping modules that are not in.
 */
const PRELUDE = [
  'DEV=eth0',
  '[ -e /sys/class/net/$DEV ] || for d in /sys/class/net/*; do [ "${d##*/}" = lo ] || { DEV=${d##*/}; break; }; done',
  `F=${GUEST_TOOLS}`,
  // By path: busybox's shell runs its own applet for a bare `tc`, and that one has no netem.
  'TC=; for t in /usr/sbin/tc /sbin/tc /bin/tc; do [ -x $t ] && [ ! -L $t ] && TC=$t && break; done',
  '[ -n "$TC" ] || TC="$F/lib/ld-linux-x86-64.so.2 --library-path $F/lib $F/bin/tc"',
  'BB=busybox; [ -x $F/bin/busybox ] && BB=$F/bin/busybox',
  'M=/lib/modules; [ -d $F/modules ] && M=$F/modules',
  `for m in ${SHAPING_MODULES.map((m) => m.name).join(' ')}; do grep -q "^$m " /proc/modules || $BB insmod $M/$m.ko 2>/dev/null || true; done`,
  // The guest's default root qdisc cannot be deleted ("handle of zero"): nothing to undo then.
  '$TC qdisc del dev $DEV root 2>/dev/null || true',
].join('\n');

const REPORT = ['echo "dev $DEV"', '$TC qdisc show dev $DEV', '$TC filter show dev $DEV'].join('\n');

/** netem's arguments for `shape`, e.g. `delay 200ms 50ms loss 10% rate 1mbit`. */
export function netemArgs(shape: NetworkShape): string {
  const args: string[] = [];
  if (shape.delayMs > 0 || shape.jitterMs > 0) args.push(`delay ${shape.delayMs}ms${shape.jitterMs > 0 ? ` ${shape.jitterMs}ms` : ''}`);
  if (shape.lossPercent > 0) args.push(`loss ${shape.lossPercent}%`);
  if (shape.rate) args.push(`rate ${shape.rate}`);
  if (args.length === 0) throw new FleetboxError('usage', 'a delay needs a delay, a loss or a rate');
  return args.join(' ');
}

/** The guest shell script that puts `shape` in force (or, undefined, removes it) and reports the result. */
export function shapeScript(shape: AppliedShape | undefined): string {
  const lines = ['set -e', PRELUDE];
  if (shape && !shape.toAddresses?.length) {
    lines.push(`$TC qdisc add dev $DEV root handle 1: netem ${netemArgs(shape)}`);
  } else if (shape) {
    // Bands 1:1–1:3 take all traffic as the default prio qdisc would; only the filters feed 1:4.
    lines.push('$TC qdisc add dev $DEV root handle 1: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1');
    lines.push(`$TC qdisc add dev $DEV parent ${BAND} handle 40: netem ${netemArgs(shape)}`);
    for (const address of shape.toAddresses ?? []) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(address)) throw new FleetboxError('internal', `not an IPv4 address: ${address}`);
      lines.push(`$TC filter add dev $DEV parent 1: protocol ip prio 1 u32 match ip dst ${address}/32 flowid ${BAND}`);
    }
  }
  lines.push(REPORT);
  return lines.join('\n');
}

/** An IPv4 address as u32 prints it in `filter show` (`match 0a000002/ffffffff at 16`). */
function u32Match(address: string): string {
  return `match ${address
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .join('')}/ffffffff at 16`;
}

/**
 * Checks what the guest reported after the script: the shape is in force (a netem qdisc, a filter
 * for every destination) or, when removed, no netem is left. Throws with the guest's words.
 */
export function verifyShape(member: string, shape: AppliedShape | undefined, result: AgentExecResult): void {
  const out = result.stdout.toString();
  const err = result.stderr.toString().trim();
  const fail = (what: string) =>
    new FleetboxError('io', `${member}: ${what}${err ? `: ${err.split('\n').slice(-3).join(' | ')}` : ''}`);
  if (result.exitCode !== 0) throw fail(shape ? 'could not shape its traffic with tc netem' : 'could not remove its traffic shaping');
  const netem = out.split('\n').find((line) => line.startsWith('qdisc netem'));
  if (!shape) {
    if (netem) throw fail(`netem is still in force after removal (${netem.trim()})`);
    return;
  }
  if (!netem) throw fail('tc reports no netem qdisc after shaping');
  for (const address of shape.toAddresses ?? []) {
    if (!out.includes(u32Match(address))) throw fail(`tc reports no filter for ${address}`);
  }
}
