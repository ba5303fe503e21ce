import { randomBytes } from 'node:crypto';
import type { Logger } from '../host/logger.js';
import type { Block } from '../net/blocks.js';
import type { ClusterNetwork } from '../net/types.js';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { describeShape } from '../protocol/fault-text.js';
import type { Fault, NetworkShape } from '../protocol/schemas.js';
import { readFaults, writeFaults } from '../store/faults-record.js';
import type { Store } from '../store/layout.js';
import type { MemberRuntime } from './member-runtime.js';

/** How an operator reads a fault, and the command that heals it. */
export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case 'partition':
      return `partition ${fault.sides.map((side) => side.join(' ')).join(' / ')}`;
    case 'isolate':
      return `${fault.member} isolated from the other members`;
    case 'pause':
      return `${fault.member} paused`;
    case 'delay':
      return `${fault.member} sends with ${describeShape(fault.shape)}${fault.to ? ` to ${fault.to.join(' ')}` : ''}`;
  }
}

export function healCommand(fault: Fault): string {
  switch (fault.kind) {
    case 'pause':
      return `fleetbox fault resume ${fault.member}`;
    case 'partition':
      return `fleetbox fault heal ${fault.sides[0]?.[0] ?? '--all'}`;
    default:
      return `fleetbox fault heal ${fault.member}`;
  }
}

/** The members a fault touches: healing or stopping any of them ends it. */
export function faultMembers(fault: Fault): string[] {
  switch (fault.kind) {
    case 'partition':
      return fault.sides.flat();
    case 'delay':
      return [fault.member, ...(fault.to ?? [])];
    default:
      return [fault.member];
  }
}

/**
 * The faults a holder keeps in force in its cluster. Every change is written to faults.json
 * first and then applied (nftables rules on the cluster's bridge, QMP stop/cont), so a crash in
 * between leaves a record that says more than is in force, never less; the namespace, and with
 * it every rule, goes with the holder.
 */
export class Faults {
  private faults: Fault[];
  /** One change at a time: each rewrites the record and the whole rule set. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly cluster: string,
    private readonly network: ClusterNetwork,
    private readonly runtimes: Map<string, MemberRuntime>,
    private readonly log: Logger,
  ) {
    // What a previous holder of this cluster recorded is gone with its namespace and its VMs.
    this.faults = [];
    if (readFaults(store, cluster).length > 0) writeFaults(store, cluster, []);
  }

  list(): Fault[] {
    return [...this.faults];
  }

  /** Faults touching `member`, described for its health row. */
  of(member: string): Fault[] {
    return this.faults.filter((f) => faultMembers(f).includes(member));
  }

  paused(member: string): boolean {
    return this.faults.some((f) => f.kind === 'pause' && f.member === member);
  }

  partition(sides: string[][]): Promise<Fault[]> {
    return this.serial(async () => {
      const seen = new Set<string>();
      for (const name of sides.flat()) {
        if (seen.has(name)) throw new FleetboxError('usage', `${name} is named twice; each member may be on one side only`);
        seen.add(name);
        this.running(name);
      }
      await this.change([...this.faults, { id: newId(), kind: 'partition', sides, since: new Date().toISOString() }]);
      return this.list();
    });
  }

  isolate(member: string): Promise<Fault[]> {
    return this.serial(async () => {
      this.running(member);
      if (this.faults.some((f) => f.kind === 'isolate' && f.member === member)) return this.list();
      await this.change([...this.faults, { id: newId(), kind: 'isolate', member, since: new Date().toISOString() }]);
      return this.list();
    });
  }

  /**
   * Shapes what `member` sends (to the `to` members only, when given) with netem in the guest;
   * a member has one shape at a time, so a new one replaces the one in force.
   */
  delay(member: string, shape: NetworkShape, to?: readonly string[]): Promise<Fault[]> {
    return this.serial(async () => {
      const runtime = this.running(member);
      if (this.paused(member)) throw new FleetboxError('not_running', `${member} is paused; resume it first ('fleetbox fault resume ${member}')`);
      const toAddresses: string[] = [];
      for (const name of to ?? []) {
        if (name === member) throw new FleetboxError('usage', `${member} cannot be delayed to itself; name other members after --to`);
        const ip = this.running(name).ip;
        if (ip) toAddresses.push(ip.replace(/\/.*/, ''));
      }
      const fault: Fault = { id: newId(), kind: 'delay', member, shape, ...(to && to.length > 0 && { to: [...to] }), since: new Date().toISOString() };
      const next = [...this.faults.filter((f) => !(f.kind === 'delay' && f.member === member)), fault];
      writeFaults(this.store, this.cluster, next);
      crashPoint('holder-mid-fault');
      try {
        await runtime.shapeNetwork({ ...shape, ...(toAddresses.length > 0 && { toAddresses }) });
      } catch (error) {
        // What the script left (a half-built qdisc) goes, and with it any shape there was before.
        // Unless the guest confirms that, the new shape may be in force: it stays recorded, so
        // that status shows it and heal removes it.
        // A refusal (a member whose traffic cannot be shaped at all) applied nothing.
        const removed =
          isFleetboxError(error, 'usage') ||
          (await runtime.shapeNetwork(undefined).then(
            () => true,
            () => false,
          ));
        this.faults = removed ? this.faults.filter((f) => !(f.kind === 'delay' && f.member === member)) : next;
        writeFaults(this.store, this.cluster, this.faults);
        throw error;
      }
      this.faults = next;
      this.log.info('fault_injected', { kind: 'delay', what: describeFault(fault) });
      return this.list();
    });
  }

  pause(member: string): Promise<Fault[]> {
    return this.serial(async () => {
      const runtime = this.running(member);
      if (this.paused(member)) return this.list();
      const next: Fault[] = [...this.faults, { id: newId(), kind: 'pause', member, since: new Date().toISOString() }];
      writeFaults(this.store, this.cluster, next);
      try {
        await runtime.pause();
      } catch (error) {
        writeFaults(this.store, this.cluster, this.faults);
        throw error;
      }
      this.faults = next;
      this.log.info('fault_injected', { kind: 'pause', member });
      return this.list();
    });
  }

  resume(member: string): Promise<Fault[]> {
    return this.serial(async () => {
      const runtime = this.runtimes.get(member);
      if (!runtime) throw new FleetboxError('unknown_member', `member ${member} is not held here`);
      if (!this.paused(member)) return this.list();
      await runtime.resume();
      this.faults = this.faults.filter((f) => !(f.kind === 'pause' && f.member === member));
      writeFaults(this.store, this.cluster, this.faults);
      this.log.info('fault_healed', { kind: 'pause', member });
      return this.list();
    });
  }

  /**
   * Heals the faults touching any of `members` (all faults when none are named). `stopping` is a
   * member on its way down: what is in force inside it goes with it and is not undone first.
   */
  heal(members?: readonly string[], stopping?: string): Promise<{ faults: Fault[]; healed: Fault[] }> {
    return this.serial(async () => {
      const touched = (f: Fault) => !members || members.length === 0 || faultMembers(f).some((m) => members.includes(m));
      const healed = this.faults.filter(touched);
      const live = (name: string) => name !== stopping && this.runtimes.get(name)?.state === 'running';
      for (const fault of healed) {
        if (fault.kind === 'delay' && live(fault.member) && this.paused(fault.member) && !healed.some((f) => f.kind === 'pause' && f.member === fault.member)) {
          throw new FleetboxError('not_running', `${fault.member} is paused; resume it before its delay can be healed ('fleetbox fault resume ${fault.member}')`);
        }
      }
      const undone = new Set<Fault>();
      try {
        // A paused member on its way down is resumed too: a frozen VM cannot hear the power button.
        for (const fault of healed.filter((f) => f.kind === 'pause')) {
          const runtime = this.runtimes.get(fault.member);
          if (runtime?.state === 'running') await runtime.resume();
          undone.add(fault);
        }
        for (const fault of healed.filter((f) => f.kind === 'delay')) {
          if (live(fault.member)) await this.runtimes.get(fault.member)?.shapeNetwork(undefined);
          undone.add(fault);
        }
      } catch (error) {
        // What was undone is no longer in force and leaves the record; the rest stays, for another heal.
        await this.change(this.faults.filter((f) => !undone.has(f))).catch(() => undefined);
        throw error;
      }
      await this.change(this.faults.filter((f) => !touched(f)));
      return { faults: this.list(), healed };
    });
  }

  /** A member that stops takes its faults with it: they are not in force for its next boot. */
  memberStopped(member: string): Promise<unknown> {
    if (!this.faults.some((f) => faultMembers(f).includes(member))) return Promise.resolve();
    return this.heal([member], member).catch((error: unknown) => this.log.warn('fault_heal_failed', { member, message: String(error) }));
  }

  private running(name: string): MemberRuntime {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new FleetboxError('unknown_member', `${name} is not a member of ${this.cluster} held here`);
    if (runtime.state !== 'running' || !runtime.ip) throw new FleetboxError('not_running', `${name} is ${runtime.state}; faults apply to running members`);
    return runtime;
  }

  /** Records `next`, then puts its network part in force; on failure the previous set stays. */
  private async change(next: Fault[]): Promise<void> {
    writeFaults(this.store, this.cluster, next);
    crashPoint('holder-mid-fault');
    try {
      await this.network.block(this.blocksOf(next));
    } catch (error) {
      writeFaults(this.store, this.cluster, this.faults);
      throw error;
    }
    const added = next.filter((f) => !this.faults.includes(f));
    const removed = this.faults.filter((f) => !next.includes(f));
    this.faults = next;
    for (const f of added) this.log.info('fault_injected', { kind: f.kind, what: describeFault(f) });
    for (const f of removed) this.log.info('fault_healed', { kind: f.kind, what: describeFault(f) });
  }

  private blocksOf(faults: readonly Fault[]): Block[] {
    const ipOf = (name: string) => this.runtimes.get(name)?.ip ?? undefined;
    const blocks: Block[] = [];
    for (const fault of faults) {
      if (fault.kind === 'isolate') {
        const ip = ipOf(fault.member);
        if (ip) blocks.push({ from: ip, to: '*' }, { from: '*', to: ip });
      } else if (fault.kind === 'partition') {
        fault.sides.forEach((side, i) => {
          for (const other of fault.sides.slice(i + 1)) {
            for (const a of side) {
              for (const b of other) {
                const ipA = ipOf(a);
                const ipB = ipOf(b);
                if (ipA && ipB) blocks.push({ from: ipA, to: ipB }, { from: ipB, to: ipA });
              }
            }
          }
        });
      }
    }
    return blocks;
  }

  /**
   * Runs `work` with no fault changing meanwhile (a snapshot: what it checked before pausing the
   * members stays true until they run again).
   */
  whileUnchanged<T>(work: (inForce: readonly Fault[]) => Promise<T>): Promise<T> {
    return this.serial(() => work(this.list()));
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function newId(): string {
  return randomBytes(4).toString('hex');
}
