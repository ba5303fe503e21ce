import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { addMember, type AddBudget } from '../control/add-member.js';
import { removeMembers } from '../control/remove.js';
import { Session } from '../control/session.js';
import { getStatus } from '../control/status.js';
import { stopMembersLocked } from '../control/stop.js';
import { up, type MemberSpecInput } from '../control/up.js';
import { FleetboxError } from '../protocol/errors.js';
import { Store } from '../store/layout.js';
import { DEFAULT_BOOT_TIMEOUT_MS } from '../store/member-config.js';
import { listMembers } from '../store/members.js';
import { clusterOf, validateName } from '../store/names.js';
import type { ExecOptions, ExecResult } from './exec.js';
import { Member } from './member.js';
import { DEFAULT_BACKEND } from '../store/backend-kinds.js';
import type { BackendKind } from '../store/member-config.js';
import { checkFaultOrder, sendFaultOrder } from '../control/faults.js';
import { takeSnapshot } from '../control/snapshot.js';
import type { Fault } from '../protocol/schemas.js';

export interface StartClusterOptions {
  /** Cluster name; members are `<name>-1 … <name>-<members>`. */
  name: string;
  /** How many members (default 1). */
  members?: number;
  /** What a member is (see BACKENDS): a real VM by default, or a plain process on a loopback address. */
  backend?: BackendKind;
  cpus?: number;
  memoryMiB?: number;
  /** Size of a persistent disk mounted at /data in each guest (0 = none). */
  diskMiB?: number;
  /**
   * qemu: the guest's root. 'initramfs' (default) is the small RAM guest; 'host' is the host's root
   * file system read-only (secrets masked) with a per-member writable overlay, on the disk when
   * `diskMiB` is given so writes survive a stop.
   */
  rootfs?: 'initramfs' | 'host' | 'image';
  /** qemu: boot this image (see buildImage / `fleetbox image build`); implies rootfs 'image'. */
  image?: string;
  /** qemu, with `image`: 'systemd' makes the image's systemd PID 1 (running once the system is up). */
  init?: 'fleetbox' | 'systemd';
  /** qemu: host folders mounted in every member (`readOnly` defaults to false). */
  shares?: { host: string; guest?: string; readOnly?: boolean }[];
  /**
   * qemu: members start as clones of a booted template (made once per image and size) wherever
   * they can be (the RAM guest without disk or shares). `true` insists (refused otherwise);
   * `false` boots each member, for tests of the boot itself.
   */
  fast?: boolean;
  /** process backend: the command each member runs. */
  cmd?: string;
  /** process backend: the port each member listens on. */
  port?: number;
  /** Append a short random suffix to `name` so parallel runs never collide. */
  unique?: boolean;
  /** Keep the cluster after this process exits (default: bound to this process). */
  detached?: boolean;
  /** Boot budget, image preparation excluded (default 120 s). */
  bootTimeoutMs?: number;
  /** Image download/build budget (default 30 min). */
  prepareTimeoutMs?: number;
  /** Store directory (default $FLEETBOX_HOME or ~/.fleetbox). */
  home?: string;
  /**
   * Start as a fork of this snapshot (`cluster.snapshot(NAME)` / `fleetbox snapshot`): every
   * member as it was saved (memory, processes, disk), running on, with the same addresses in the
   * fork's own network; `<name>-2` is the snapshot's second member. Member settings
   * (backend, cpus, …) come from the snapshot and may not be given.
   */
  from?: string;
}

/** What `cluster.snapshot()` saved. */
export interface SnapshotInfo {
  name: string;
  cluster: string;
  members: string[];
  /** Bytes on disk. */
  bytes: number;
  /** How long the members stood paused for the save. */
  pausedMs: number;
}

/** A random suffix that can never read as `-<digits>` (which would name a member, not a cluster). */
export function uniqueSuffix(): string {
  return `x${randomBytes(4).toString('hex').slice(0, 6)}`;
}

/** A running cluster. `await using` disposes it: members stopped, state deleted. */
export class Cluster {
  private destroyed: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly members: Member[],
    private readonly store: Store,
    private readonly session: Session | undefined,
    private readonly timeouts: AddBudget,
  ) {}

  member(name: string): Member {
    const found = this.members.find((m) => m.name === name);
    if (!found) throw new FleetboxError('not_found', `cluster ${this.name} has no member ${name}; it has ${this.members.map((m) => m.name).join(', ')}`);
    return found;
  }

  /** Adds a member (or re-joins a stopped one) to the live cluster's network. */
  async add(name: string): Promise<Member> {
    validateName(name, 'member name');
    if (clusterOf(name) !== this.name) {
      throw new FleetboxError('usage', `${name} is not a member name of cluster ${this.name}; use ${this.name}-<n>`);
    }
    await addMember(this.store, name, this.timeouts);
    const view = await getStatus(this.store, { cluster: this.name, name });
    const existing = this.members.find((m) => m.name === name);
    if (existing) {
      await existing.refresh();
      return existing;
    }
    const member = new Member(this.store, view, this.timeouts);
    this.members.push(member);
    return member;
  }

  /** Runs one command on every member concurrently. */
  async execAll(command: string, options: ExecOptions = {}): Promise<Map<string, ExecResult | FleetboxError>> {
    const results = await Promise.allSettled(this.members.map((m) => m.exec(command, options)));
    return new Map(
      results.map((r, i) => [
        this.members[i]?.name ?? '',
        r.status === 'fulfilled' ? r.value : r.reason instanceof FleetboxError ? r.reason : new FleetboxError('internal', String(r.reason)),
      ]),
    );
  }

  /**
   * Splits the cluster: traffic between members of different sides is dropped (both ways) on
   * the cluster's bridge. Sides are member names or Members; resolves once the rules are in force.
   */
  async partition(...sides: (string | Member)[][]): Promise<Fault[]> {
    const names = sides.map((side) => side.map((m) => (typeof m === 'string' ? m : m.name)));
    const order = { op: 'partition' as const, sides: names };
    checkFaultOrder(order);
    return (await sendFaultOrder(this.store, names[0]?.[0] ?? '', order)).faults;
  }

  /** Ends every fault in the cluster (partitions, isolations, delays, pauses); returns what it healed. */
  async heal(): Promise<Fault[]> {
    const via = this.members[0]?.name;
    if (!via) return [];
    return (await sendFaultOrder(this.store, via, { op: 'heal' })).healed ?? [];
  }

  /** The faults in force. */
  async faults(): Promise<Fault[]> {
    const via = this.members[0]?.name;
    if (!via) return [];
    return (await sendFaultOrder(this.store, via, { op: 'list' })).faults;
  }

  /**
   * Saves every member (memory, processes, disks) as snapshot `name`, to start forks of it with
   * `startCluster({ from: name })`. The members are paused for the save and run on after it.
   */
  async snapshot(name: string): Promise<SnapshotInfo> {
    const manifest = await takeSnapshot(this.store, this.name, name);
    return { name: manifest.name, cluster: manifest.cluster, members: manifest.members.map((m) => m.name), bytes: manifest.bytes, pausedMs: manifest.pausedMs };
  }

  /** Stops every member (state kept on disk); for a bound cluster the holder exits too. */
  async stop(): Promise<void> {
    await stopMembersLocked(this.store, listMembers(this.store, this.name));
    await this.session?.close();
    await Promise.all(this.members.map((m) => m.refresh().catch(() => undefined)));
  }

  /** Stops everything and deletes the cluster's state. Safe to call twice or after a crash. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      await this.session?.close();
      await removeMembers(this.store, listMembers(this.store, this.name));
    })();
    return this.destroyed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }
}

function specOf(options: StartClusterOptions): MemberSpecInput {
  return {
    // A fork's members are the snapshot's: only what the caller gave is passed (and refused).
    ...(options.from === undefined ? { backend: options.backend ?? DEFAULT_BACKEND } : options.backend !== undefined && { backend: options.backend }),
    ...(options.cpus !== undefined && { cpus: options.cpus }),
    ...(options.memoryMiB !== undefined && { memoryMiB: options.memoryMiB }),
    ...(options.diskMiB !== undefined && { diskMiB: options.diskMiB }),
    ...(options.cmd !== undefined && { cmd: options.cmd }),
    ...(options.port !== undefined && { port: options.port }),
    ...(options.rootfs !== undefined && { rootfs: options.rootfs }),
    ...(options.image !== undefined && { rootfs: options.rootfs ?? 'image', image: options.image }),
    ...(options.init !== undefined && { init: options.init }),
    ...(options.fast !== undefined && { fast: options.fast }),
    ...(options.shares !== undefined && {
      shares: options.shares.map((share) => ({ host: resolve(share.host), guest: share.guest ?? resolve(share.host), readOnly: share.readOnly ?? false })),
    }),
  };
}

/**
 * Boots a cluster and resolves once every member runs. Bound to this process unless
 * `detached`: if the process dies in any way, the holder stops every member.
 */
export async function startCluster(options: StartClusterOptions): Promise<Cluster> {
  const base = validateName(options.name, 'cluster name');
  const name = options.unique ? `${base.slice(0, 48)}-${uniqueSuffix()}` : base;
  if (clusterOf(name) !== name) {
    throw new FleetboxError('usage', `cluster name ${name} ends in -<digits>, which names a member; pick another name`);
  }
  const store = new Store(options.home).ensure();
  const bootTimeoutMs = options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const result = await up(store, {
    names: [name],
    ...(options.from === undefined ? { count: options.members ?? 1 } : options.members !== undefined && { count: options.members }),
    ...(options.from !== undefined && { from: options.from }),
    spec: specOf(options),
    bound: !options.detached,
    bootTimeoutMs,
    ...(options.prepareTimeoutMs !== undefined && { prepareTimeoutMs: options.prepareTimeoutMs }),
  });
  const spawned = result.spawned.get(name);
  const session = spawned && !options.detached ? new Session(name, spawned) : undefined;
  const timeouts = { bootTimeoutMs, ...(options.prepareTimeoutMs !== undefined && { prepareTimeoutMs: options.prepareTimeoutMs }) };
  return new Cluster(name, result.members.map((view) => new Member(store, view, timeouts)), store, session, timeouts);
}

/** A handle on a cluster someone else started (e.g. `fleetbox up`); destroy() removes it. */
export async function attach(name: string, options: { home?: string } = {}): Promise<Cluster> {
  validateName(name, 'cluster name');
  const store = new Store(options.home).ensure();
  const refs = listMembers(store, name);
  if (refs.length === 0) throw new FleetboxError('not_found', `no cluster named ${name}; 'fleetbox ls' lists them`);
  const views = await Promise.all(refs.map((ref) => getStatus(store, ref)));
  const timeouts = { bootTimeoutMs: DEFAULT_BOOT_TIMEOUT_MS };
  return new Cluster(name, views.map((view) => new Member(store, view, timeouts)), store, undefined, timeouts);
}
