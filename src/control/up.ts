import { lstatSync } from 'node:fs';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError } from '../protocol/errors.js';
import type { HolderOptionsInput } from '../protocol/holder-options.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import {
  DEFAULT_BOOT_TIMEOUT_MS,
  DEFAULT_PREPARE_TIMEOUT_MS,
  MemberConfigSchema,
  type BackendKind,
  type MemberConfig,
  type MemberConfigInput,
} from '../store/member-config.js';
import { readJson } from '../store/atomic.js';
import { MAX_CLUSTER_MEMBERS, NetworkRecordSchema } from '../store/network-record.js';
import { listMembers, readMemberConfig, writeMemberConfig, type MemberRef } from '../store/members.js';
import { clusterOf, memberNames, validateName } from '../store/names.js';
import { DEFAULT_BACKEND, MACHINE_BACKENDS } from '../store/backend-kinds.js';
import { hasSystemd, readRootImage } from '../store/root-images.js';
import { checkShares } from '../store/shares.js';
import { reconcileCluster } from '../store/reconcile.js';
import { addMember, liveSibling } from './add-member.js';
import { spawnHolder, type SpawnedHolder } from './spawn.js';
import { getStatus, type MemberView } from './status.js';
import { waitMembers } from './wait.js';
import { forkNetwork, forkPlan } from './snapshot.js';

export type MemberSpecInput = Omit<MemberConfigInput, 'name' | 'cluster' | 'createdAt' | 'backend' | 'bootTimeoutMs'> & {
  backend?: BackendKind;
};

export interface UpOptions {
  /** Member names (`web-2`) or cluster names (`web`). */
  names: string[];
  /** With one cluster name: make sure members `<cluster>-1 … -<count>` run. */
  count?: number;
  spec?: MemberSpecInput;
  /** bound: the holder dies with this process (library); detached: it outlives it (CLI). */
  bound?: boolean;
  /** Boot budget per call; image preparation is not charged to it. */
  bootTimeoutMs?: number;
  prepareTimeoutMs?: number;
  holderOptions?: Partial<HolderOptionsInput>;
  /** Start the (new) cluster as a fork of this snapshot: its members as saved, running on. */
  from?: string;
  onChange?(view: MemberView): void;
}

export interface UpResult {
  members: MemberView[];
  /** Holders spawned by this call (one per cluster at most); bound ones carry the control socket. */
  spawned: Map<string, SpawnedHolder>;
}

/**
 * Members `up` leaves alone: on their way to running, or there. Not `stopping` (which
 * protocol/health-levels counts as active, since a holder still owns it): `up` asks the holder
 * for such a member and gets "member … is already stopping" back, instead of waiting for a
 * member that is going away to run.
 */
const ACTIVE = new Set(['running', 'starting', 'downloading']);

/** Addresses the cluster's network record has given out, by member; none if it has no (readable) record. */
function recordedAddresses(store: Store, cluster: string): Record<string, string> {
  try {
    return readJson(store.networkPath(cluster), NetworkRecordSchema)?.addresses ?? {};
  } catch {
    return {}; // a corrupt record is rebuilt from scratch by the next holder
  }
}

/**
 * A member that cannot get an address fails inside the holder and stays behind as an `error`
 * member; refused here instead, before any config is written. Every member on disk keeps (or will
 * need) an address, and so does every name the record still lists (a removed member's address
 * comes back only when its cluster goes).
 */
function refuseOverfull(store: Store, cluster: string, planned: string[]): void {
  const addresses = recordedAddresses(store, cluster);
  const fresh = planned.filter((name) => addresses[name] === undefined);
  if (fresh.length === 0) return;
  const claimants = new Set([...Object.keys(addresses), ...listMembers(store, cluster).map((m) => m.name), ...planned]);
  if (claimants.size <= MAX_CLUSTER_MEMBERS) return;
  const taken = claimants.size - fresh.length;
  throw new FleetboxError(
    'usage',
    `cluster ${cluster} has addresses for at most ${MAX_CLUSTER_MEMBERS} members; ${taken} are taken, so ${fresh.length} more ${fresh.length === 1 ? 'does' : 'do'} not fit ` +
      `('fleetbox rm' members to make room; a removed member's address is free again only once its whole cluster is removed)`,
  );
}

/** Which members `names` (+ `count`) stand for, grouped by cluster. */
export function planMembers(store: Store, names: string[], count?: number): Map<string, string[]> {
  if (names.length === 0) throw new FleetboxError('usage', 'name at least one member or cluster, e.g. fleetbox up web -n 3');
  if (count !== undefined && (!Number.isInteger(count) || count < 1 || count > MAX_CLUSTER_MEMBERS)) {
    throw new FleetboxError('usage', `-n must be a whole number from 1 to ${MAX_CLUSTER_MEMBERS} (the addresses a cluster has), not ${count}`);
  }
  const plan = new Map<string, string[]>();
  const add = (member: string) => {
    const cluster = clusterOf(member);
    const list = plan.get(cluster) ?? [];
    if (!list.includes(member)) list.push(member);
    plan.set(cluster, list);
  };
  for (const name of names) {
    validateName(name);
    const isMember = clusterOf(name) !== name;
    if (isMember) {
      if (count !== undefined) {
        throw new FleetboxError('usage', `-n takes a cluster name; ${name} names a member of ${clusterOf(name)}`);
      }
      add(name);
      continue;
    }
    const existing = listMembers(store, name).map((m) => m.name);
    const wanted = count !== undefined ? memberNames(name, count) : existing.length > 0 ? existing : memberNames(name, 1);
    wanted.forEach(add);
  }
  for (const [cluster, members] of plan) refuseOverfull(store, cluster, members);
  return plan;
}

/**
 * A symlink planted in the store must never be followed: the config read through it (its `cmd`
 * is run) and everything written through it would live outside the store, where neither `ls`
 * nor `rm --all` sees it.
 */
function refuseLinks(store: Store, cluster: string, name: string): void {
  for (const dir of [store.clusterDir(cluster), store.memberDir(cluster, name)]) {
    let link = false;
    try {
      link = lstatSync(dir).isSymbolicLink();
    } catch {
      // not created yet
    }
    if (link) throw new FleetboxError('state_corrupt', `${dir} is a symbolic link; fleetbox does not follow links in its store: remove it`);
  }
}

/** The same shares, in the same order, with the same modes. */
function sameShares(a: readonly { host: string; guest: string; readOnly?: boolean }[], b: typeof a): boolean {
  return a.length === b.length && a.every((s, i) => s.host === b[i]?.host && s.guest === b[i]?.guest && (s.readOnly ?? false) === (b[i]?.readOnly ?? false));
}

/** A member booting an image needs it built (with systemd for --init systemd): said before anything starts. */
function checkImage(store: Store, config: { rootfs: string; image?: string | undefined; init: string }): void {
  if (config.init === 'systemd' && config.rootfs !== 'image') {
    throw new FleetboxError('usage', '--init systemd boots the systemd of an image; give --image NAME (built with --packages systemd-sysv,…)');
  }
  if (config.rootfs !== 'image') return;
  if (config.image === undefined) throw new FleetboxError('usage', "--rootfs image needs --image NAME (see 'fleetbox image ls')");
  const image = readRootImage(store, config.image);
  if (!image) throw new FleetboxError('usage', `no image named ${config.image}; build it first: fleetbox image build ${config.image} --packages …`);
  if (config.init === 'systemd' && !hasSystemd(image)) {
    throw new FleetboxError('usage', `image ${config.image} has no systemd; build it with --packages systemd-sysv,${image.packages.join(',') || '…'}`);
  }
}

/** What a member is made of cannot change under it: rm and up again, as with the backend. */
function refuseChange(name: string, what: string, was: string, wanted: string): never {
  throw new FleetboxError('usage', `member ${name} was created with ${what} ${was}, not ${wanted}; 'fleetbox rm ${name} --yes' first to change it`);
}

function ensureConfig(store: Store, cluster: string, name: string, spec: MemberSpecInput, bootTimeoutMs: number): void {
  refuseLinks(store, cluster, name);
  const existing = readMemberConfig(store, cluster, name);
  if (existing) {
    if (spec.backend !== undefined && spec.backend !== existing.backend) refuseChange(name, 'backend', existing.backend, spec.backend);
    if (spec.rootfs !== undefined && spec.rootfs !== existing.rootfs) refuseChange(name, '--rootfs', existing.rootfs, spec.rootfs);
    if (spec.image !== undefined && spec.image !== existing.image) refuseChange(name, '--image', existing.image ?? 'none', spec.image);
    if (spec.init !== undefined && spec.init !== existing.init) refuseChange(name, '--init', existing.init, spec.init);
    checkImage(store, existing);
    if (spec.shares !== undefined && !sameShares(checkShares(spec.shares, store.home), existing.shares)) {
      const list = (shares: readonly { host: string; guest: string }[]) => shares.map((s) => `${s.host}:${s.guest}`).join(',') || 'no shares';
      refuseChange(name, 'shares', list(existing.shares), list(spec.shares));
    }
    // A share that vanished since the member was made fails here, before anything starts.
    checkShares(existing.shares, store.home);
    // The boot budget and the way to start belong to the call: the holder reads them from here.
    const fast = spec.fast ?? existing.fast;
    if (fast === true) checkFast(existing);
    if (existing.bootTimeoutMs !== bootTimeoutMs || existing.fast !== fast) {
      writeMemberConfig(store, { ...existing, bootTimeoutMs, ...(fast !== undefined && { fast }) });
    }
    return;
  }
  // A new member of an existing cluster is made like its siblings unless told otherwise.
  // The first readable sibling is enough: reading them all for each new member made `up -n 100`
  // read 5,000 configs.
  let sibling: MemberConfig | undefined;
  for (const ref of listMembers(store, cluster)) {
    sibling = readMemberConfig(store, cluster, ref.name);
    if (sibling) break;
  }
  const inherited = sibling
    ? {
        backend: sibling.backend,
        cmd: sibling.cmd,
        port: sibling.port,
        cpus: sibling.cpus,
        memoryMiB: sibling.memoryMiB,
        diskMiB: sibling.diskMiB,
        rootfs: sibling.rootfs,
        image: sibling.image,
        init: sibling.init,
        shares: sibling.shares,
        fast: sibling.fast,
      }
    : {};
  const config = MemberConfigSchema.parse({
    ...inherited,
    ...spec,
    backend: spec.backend ?? inherited.backend ?? DEFAULT_BACKEND,
    bootTimeoutMs,
    name,
    cluster,
    createdAt: new Date().toISOString(),
  });
  if (!MACHINE_BACKENDS.has(config.backend) && (config.rootfs !== 'initramfs' || config.shares.length > 0)) {
    throw new FleetboxError('usage', `--rootfs, --image and --share need real VMs; a ${config.backend} member already runs on the host (drop --backend ${config.backend})`);
  }
  if (config.image !== undefined && config.rootfs !== 'image') {
    throw new FleetboxError('usage', `--image boots that image as the member's root; it cannot go with --rootfs ${config.rootfs}`);
  }
  checkImage(store, config);
  if (config.fast === true) checkFast(config);
  writeMemberConfig(store, { ...config, shares: checkShares(config.shares, store.home) });
}

/** A fast start clones a booted RAM guest: what the clone cannot carry is refused up front. */
function checkFast(config: MemberConfig): void {
  if (!MACHINE_BACKENDS.has(config.backend)) throw new FleetboxError('usage', `--fast clones a booted VM; a ${config.backend} member has nothing to clone (drop --fast)`);
  if (config.rootfs !== 'initramfs' || config.shares.length > 0 || config.diskMiB > 0) {
    throw new FleetboxError('usage', `--fast clones the RAM guest without --disk, --share or --rootfs; ${config.name} has ${config.rootfs !== 'initramfs' ? `--rootfs ${config.rootfs}` : config.diskMiB > 0 ? 'a disk' : 'shares'} (drop --fast)`);
  }
}

/**
 * Makes the named members run. Per cluster, under the cluster lock: clean up after dead
 * holders, write configs for new members, then either ask the live holder to take the members
 * on (addmember: they join its network) or spawn a holder for them. Two concurrent `up` of one
 * cluster serialise here: the second finds the first's holder and attaches to it.
 */
export async function up(store: Store, options: UpOptions): Promise<UpResult> {
  if (options.from !== undefined) return upFrom(store, options, options.from);
  const plan = planMembers(store, options.names, options.count);
  const spec = options.spec ?? {};
  // A bad share is refused before any member's config is written.
  if (spec.shares) checkShares(spec.shares, store.home);
  const spawned = new Map<string, SpawnedHolder>();
  const refs: MemberRef[] = [];
  const bootTimeoutMs = options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const prepareTimeoutMs = options.prepareTimeoutMs ?? DEFAULT_PREPARE_TIMEOUT_MS;
  return startThenWait(store, options, refs, spawned, async () => {
    for (const [cluster, members] of plan) {
      members.forEach((name) => refs.push({ cluster, name }));
      await withLock(store.clusterLockPath(cluster), async () => {
        for (const name of members) ensureConfig(store, cluster, name, spec, bootTimeoutMs);
        crashPoint('client-mid-up');
        reconcileCluster(store, cluster);
        // A bound cluster has exactly one owner: any live holder of it means someone else owns it,
        // even when every member asked for already runs.
        if (options.bound && liveSibling(store, cluster)) {
          throw new FleetboxError('busy', `cluster ${cluster} is already held by another process; pick another name or attach('${cluster}')`);
        }
        const views = await Promise.all(members.map((name) => getStatus(store, { cluster, name })));
        const idle = views.filter((v) => !ACTIVE.has(v.state)).map((v) => v.name);
        if (idle.length === 0) return;
        if (liveSibling(store, cluster)) {
          await Promise.all(idle.map((name) => addMember(store, name, { bootTimeoutMs, prepareTimeoutMs })));
          return;
        }
        // A fork's holder makes its network where the snapshot's guests have their addresses.
        const network = forkNetwork(store, cluster);
        const holderOptions = network ? { ...options.holderOptions, network } : options.holderOptions;
        spawned.set(
          cluster,
          await spawnHolder(store, {
            cluster,
            members: idle,
            bound: options.bound ?? false,
            ...(holderOptions && { holderOptions }),
          }),
        );
      });
    }
  });
}

/**
 * Runs `start` (configs written, holders asked or spawned), then waits for `refs` to run. A
 * bound holder this call started must not outlive a failed call: closing its owner connection
 * stops it.
 */
async function startThenWait(store: Store, options: UpOptions, refs: MemberRef[], spawned: Map<string, SpawnedHolder>, start: () => Promise<void>): Promise<UpResult> {
  try {
    await start();
    const members = await waitMembers(store, refs, {
      timeoutMs: options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS,
      prepareTimeoutMs: options.prepareTimeoutMs ?? DEFAULT_PREPARE_TIMEOUT_MS,
      ...(options.onChange && { onChange: (view: MemberView) => options.onChange?.(view) }),
    });
    return { members, spawned };
  } catch (error) {
    for (const holder of spawned.values()) holder.control?.destroy();
    throw error;
  }
}

/** The `up` flag of each member setting, for errors. */
const SPEC_FLAGS: Record<string, string> = {
  backend: '--backend', cmd: '--cmd', port: '--port', cpus: '--cpus', memoryMiB: '--mem', diskMiB: '--disk',
  rootfs: '--rootfs', image: '--image', init: '--init', fast: '--fast/--boot', shares: '--share',
};

/**
 * `up NEW --from SNAPSHOT`: a new cluster whose members are the snapshot's, restored where they
 * were saved (same memory, same processes, same addresses in the fork's own namespace), each
 * named after its place: web-2 of the snapshot becomes NEW-2.
 */
async function upFrom(store: Store, options: UpOptions, snapshot: string): Promise<UpResult> {
  const [cluster, ...more] = options.names;
  if (cluster === undefined || more.length > 0) throw new FleetboxError('usage', `--from starts one new cluster: fleetbox up NEW --from ${snapshot}`);
  validateName(cluster, 'cluster name');
  if (clusterOf(cluster) !== cluster) throw new FleetboxError('usage', `--from takes a cluster name; ${cluster} names a member of ${clusterOf(cluster)}`);
  const given = Object.entries(options.spec ?? {}).filter(([, value]) => value !== undefined).map(([key]) => SPEC_FLAGS[key] ?? key);
  if (given.length > 0) throw new FleetboxError('usage', `--from starts the members as they were saved; drop ${[...new Set(given)].join(', ')}`);
  const plan = forkPlan(store, snapshot, cluster);
  if (options.count !== undefined && options.count !== plan.members.length) {
    throw new FleetboxError('usage', `snapshot ${snapshot} has ${plan.members.length} member(s); drop -n or give -n ${plan.members.length}`);
  }
  const bootTimeoutMs = options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const spawned = new Map<string, SpawnedHolder>();
  const refs = plan.members.map((m) => ({ cluster, name: m.name }));
  return startThenWait(store, options, refs, spawned, () =>
    withLock(store.clusterLockPath(cluster), async () => {
      reconcileCluster(store, cluster);
      if (listMembers(store, cluster).length > 0) {
        throw new FleetboxError('usage', `cluster ${cluster} exists; a fork is a new cluster: pick another name or remove it first ('fleetbox rm ${cluster} --yes')`);
      }
      for (const member of plan.members) {
        refuseLinks(store, cluster, member.name);
        const { fast: _fast, restore: _restore, ...saved } = member.config;
        writeMemberConfig(store, MemberConfigSchema.parse({ ...saved, name: member.name, cluster, bootTimeoutMs, createdAt: new Date().toISOString(), restore: { snapshot, member: member.from } }));
      }
      crashPoint('client-mid-up');
      spawned.set(
        cluster,
        await spawnHolder(store, {
          cluster,
          members: plan.members.map((m) => m.name),
          bound: options.bound ?? false,
          holderOptions: { ...options.holderOptions, network: { subnet: plan.subnet, addresses: Object.fromEntries(plan.members.map((m) => [m.name, m.ip])) } },
        }),
      );
    }),
  );
}
