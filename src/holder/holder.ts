import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server, Socket } from 'node:net';
import type { Backend, MemberExecOptions, MemberExecResult } from '../backend/types.js';

import type { Logger } from '../host/logger.js';
import type { ClusterNetwork } from '../net/types.js';
import { crashPoint, holdPoint } from '../protocol/crash-point.js';
import { FleetboxError, toFleetboxError } from '../protocol/errors.js';
import type { HolderOptions } from '../protocol/holder-options.js';
import type { MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import { listMembers, readMemberConfig, writeMemberConfig, writeMemberState } from '../store/members.js';
import { clusterOf, validateName } from '../store/names.js';
import { removePidfile, writePidfile } from '../store/pidfile.js';
import { bytesOnDisk } from '../store/snapshots.js';
import { processStartTime } from '../host/proc.js';
import { reconcileMember } from '../store/reconcile.js';
import { createDialer, type Dialer } from '../net/dialer.js';
import { serveControlSocket } from './control-socket.js';
import { Forwards } from './forwards.js';
import { startHealthLoop, type HealthLoop } from './health-loop.js';
import { MemberRuntime } from './member-runtime.js';
import { describeFault, Faults, healCommand } from './faults.js';
import type { Fault } from '../protocol/schemas.js';
import { serveMemberSocket, type FaultCall } from './member-socket.js';
import { closeUnix } from './socket-server.js';
import type { MemberTarget } from './checkers/index.js';

/** Commands (exec, copy steps) one member runs at once for fleetbox clients. */
export const MAX_EXECS_PER_MEMBER = 64;

export interface HolderInit {
  store: Store;
  cluster: string;
  members: string[];
  options: HolderOptions;
  backend: Backend;
  log: Logger;
  /** Called once the holder has stopped everything; the runner exits the process. */
  onExit(code: number): void;
}

/**
 * The server half: owns one cluster's member processes, its network and its sockets. It exits
 * when its last member stops, when its owner goes away (bound mode), or on SIGTERM/SIGINT.
 */
export class Holder {
  readonly instance = randomBytes(8).toString('hex');
  readonly runtimes = new Map<string, MemberRuntime>();
  private readonly servers = new Map<string, Server>();
  /** Names between the start of adopt() and their registration, so two adopts of one name cannot race. */
  private readonly adopting = new Set<string>();
  private started = false;
  private controlServer: Server | undefined;
  private network: ClusterNetwork | undefined;
  private faultSet: Faults | undefined;
  private shuttingDown: Promise<void> | undefined;
  private health: HealthLoop | undefined;
  private forwards: Forwards | undefined;
  private readonly execsRunning = new Map<string, number>();
  /** A snapshot is being taken: members are paused for it, on purpose. */
  private snapshotting = false;
  private dialer: Dialer | undefined;
  private readonly startTime = processStartTime(process.pid) ?? '0';

  constructor(readonly init: HolderInit) {}

  get store(): Store {
    return this.init.store;
  }
  get cluster(): string {
    return this.init.cluster;
  }
  get log(): Logger {
    return this.init.log;
  }
  get options(): HolderOptions {
    return this.init.options;
  }

  get mode(): HolderOptions['mode'] {
    return this.init.options.mode;
  }

  async start(): Promise<void> {
    const { store, cluster, members, log } = this.init;
    log.info('holder_start', { pid: process.pid, instance: this.instance, members, mode: this.options.mode });
    for (const member of listMembers(store, cluster)) {
      const result = reconcileMember(store, cluster, member.name);
      if (result.killed.length > 0) log.warn('reconciled_orphans', { member: member.name, killed: result.killed });
    }
    // The control socket comes first: a second holder of this cluster fails here, touching nothing.
    this.controlServer = await serveControlSocket(this, store.controlSocketPath(cluster));
    crashPoint('holder-after-control-listen');
    this.network = await this.init.backend.openNetwork(store, cluster, log, this.init.options.network);
    this.faultSet = new Faults(store, cluster, this.network, this.runtimes, log);
    crashPoint('holder-after-network-open');
    for (const name of members) await this.adopt(name);
    crashPoint('holder-after-pidfile');
    for (const name of members) void this.runtimes.get(name)?.boot();
    this.started = true;
    this.health = startHealthLoop({
      store,
      cluster,
      log,
      instance: this.instance,
      settings: this.options.health,
      members: () => this.healthTargets(),
    });
  }

  /** The members as the health loop checks them, with the faults in force on each. */
  private healthTargets(): MemberTarget[] {
    return [...this.runtimes.values()].map((runtime) => {
      const now = runtime.snapshot();
      return {
        name: runtime.name,
        cluster: runtime.config.cluster,
        backend: runtime.config.backend,
        state: now.state,
        since: now.since,
        ip: now.ip,
        port: runtime.config.port,
        process: now.handle ? { pid: now.handle.pid, startTime: now.handle.startTime } : null,
        inside: runtime.healthChecks(),
        faults: (this.faultSet?.of(runtime.name) ?? []).map((f) => `${describeFault(f)} (heal: ${healCommand(f)})`),
        // Paused for a snapshot is frozen on purpose too, for a second or two.
        paused: this.snapshotting || (this.faultSet?.paused(runtime.name) ?? false),
      };
    });
  }

  /** Takes `name` on as a member of this holder: config, socket, then pidfile (DESIGN §3). */
  private async adopt(name: string): Promise<MemberRuntime> {
    validateName(name, 'member name');
    if (clusterOf(name) !== this.cluster) {
      throw new FleetboxError(
        'bad_request',
        `member ${name} belongs to cluster ${clusterOf(name)}, not to ${this.cluster}; run 'fleetbox up ${name}' instead`,
      );
    }
    const config = this.configFor(name);
    if (config.backend !== this.init.backend.kind) {
      throw new FleetboxError(
        'bad_request',
        `member ${name} uses backend ${config.backend} but cluster ${this.cluster} runs on ${this.init.backend.kind}`,
      );
    }
    const existing = this.runtimes.get(name);
    if (existing?.active || this.adopting.has(name)) {
      throw new FleetboxError('already_running', `member ${name} is already ${existing?.state ?? 'starting'}`);
    }
    if (!this.network) throw new FleetboxError('internal', 'holder network is not open');
    // Nothing is registered until the socket listens: a failed adopt (the socket path taken by
    // something else, a full disk) leaves the holder exactly as it was, so it still goes idle
    // and exits when its last member stops instead of waiting for ever on a member that never was.
    this.adopting.add(name);
    try {
      if (!this.servers.has(name)) {
        this.servers.set(name, await serveMemberSocket(this, this.store.memberSocketPath(name), name));
        crashPoint('holder-after-socket-listen');
      }
      const runtime = new MemberRuntime(config, this.init.backend, this.network, this.store, this.log, {
        onChange: (r) => this.persist(r),
      });
      this.runtimes.set(name, runtime);
      writePidfile(this.store.pidfilePath(this.cluster, name), this.instance);
      this.persist(runtime);
      return runtime;
    } catch (error) {
      // Not recorded, not taken on: a half-adopted member would answer `starting` on its socket
      // for ever, block every later `up` of it and keep the holder alive.
      this.release(name);
      this.exitIfIdle();
      throw error;
    } finally {
      this.adopting.delete(name);
    }
  }

  /** The member's own config, or, for a name never seen, a copy of a sibling's. */
  private configFor(name: string) {
    const own = readMemberConfig(this.store, this.cluster, name);
    if (own) return own;
    const sibling = [...this.runtimes.values()][0]?.config;
    if (!sibling) throw new FleetboxError('unknown_member', `member ${name} has no config and no sibling to copy`);
    const config = { ...sibling, name, createdAt: new Date().toISOString() };
    writeMemberConfig(this.store, config);
    return config;
  }

  private persist(runtime: MemberRuntime): void {
    if (!this.runtimes.has(runtime.name)) return;
    try {
      const handle = runtime.handle;
      writeMemberState(this.store, this.cluster, {
        ...runtime.status(),
        ...(handle && { processStartTime: handle.startTime }),
        holder: { pid: process.pid, startTime: this.startTime },
      });
    } catch (error) {
      this.log.error('state_write_failed', { member: runtime.name, message: String(error) });
    }
    if (!runtime.active) this.exitIfIdle();
  }

  statusOf(name: string): MemberStatus {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new FleetboxError('unknown_member', `member ${name} is not held here`);
    return runtime.status();
  }

  /** addmember: boots `name` onto this holder's network; resolves when running, rejects if it failed. */
  async addMember(name: string): Promise<MemberStatus> {
    if (this.shuttingDown) throw new FleetboxError('busy', `holder of ${this.cluster} is shutting down; retry`);
    const runtime = await this.adopt(name);
    this.log.info('addmember', { member: name });
    crashPoint('holder-mid-addmember');
    await runtime.boot();
    const status = runtime.status();
    if (status.state !== 'running') {
      throw new FleetboxError('boot_failed', status.error ?? `member ${name} did not start`);
    }
    return status;
  }

  /** A loopback port on the host piped to `port` of a running member; closed when it stops. */
  async forward(name: string, port: number): Promise<{ host: string; port: number; memberPort: number }> {
    const runtime = this.runtimes.get(name);
    const network = runtime?.memberNetwork;
    if (!runtime || runtime.state !== 'running' || !network) {
      throw new FleetboxError('not_running', `member ${name} is not running; start it first`);
    }
    this.forwards ??= new Forwards(this.log);
    this.dialer ??= createDialer(this.store, network.namespace);
    const hostPort = await this.forwards.open(name, this.dialer, network.ip, port);
    return { host: '127.0.0.1', port: hostPort, memberPort: port };
  }

  /**
   * Runs a command in a running member. At most MAX_EXECS_PER_MEMBER run at once per member; more
   * are refused with `busy` at once (a flood must not fork a thousand processes in a small guest).
   */
  exec(name: string, command: string, options: MemberExecOptions): Promise<MemberExecResult> {
    return this.access(name, (runtime) => runtime.exec(command, options));
  }

  /** Writes a file in a running member (counted like a command). */
  writeFile(name: string, path: string, data: Buffer, append: boolean): Promise<void> {
    return this.access(name, (runtime) => runtime.writeFile(path, data, append));
  }

  /** Reads part of a file in a running member (counted like a command). */
  readFile(name: string, path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
    return this.access(name, (runtime) => runtime.readFile(path, offset, count));
  }

  private async access<T>(name: string, use: (runtime: MemberRuntime) => Promise<T>): Promise<T> {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new FleetboxError('unknown_member', `member ${name} is not held here`);
    const running = this.execsRunning.get(name) ?? 0;
    if (running >= MAX_EXECS_PER_MEMBER) {
      throw new FleetboxError('busy', `${name} already runs ${MAX_EXECS_PER_MEMBER} commands from fleetbox; retry when some finish`);
    }
    this.execsRunning.set(name, running + 1);
    try {
      return await use(runtime);
    } finally {
      this.execsRunning.set(name, (this.execsRunning.get(name) ?? 1) - 1);
    }
  }

  /** The faults in force in this cluster (what `fault ls` and health show). */
  get faults(): Faults | undefined {
    return this.faultSet;
  }

  /** Injects, heals or lists faults; `member` is the one whose socket took the request. */
  async fault(member: string, request: FaultCall): Promise<{ faults: Fault[]; healed?: Fault[] }> {
    const faults = this.faultSet;
    if (!faults) throw new FleetboxError('busy', `holder of ${this.cluster} is still starting; retry`);
    // Not queued behind a snapshot (minutes, maybe): its client would give up and the fault
    // would still land later. Said at once instead.
    if (this.snapshotting && request.op !== 'list') throw new FleetboxError('busy', `a snapshot of ${this.cluster} is being taken; retry when it is done`);
    const targets = request.members && request.members.length > 0 ? request.members : [member];
    for (const name of [...targets, ...(request.sides?.flat() ?? []), ...(request.to ?? [])]) {
      if (clusterOf(name) !== this.cluster) throw new FleetboxError('usage', `${name} is not a member of cluster ${this.cluster}`);
    }
    switch (request.op) {
      case 'partition':
        if (!request.sides) throw new FleetboxError('bad_request', 'partition needs sides');
        return { faults: await faults.partition(request.sides) };
      case 'isolate':
        for (const name of targets) await faults.isolate(name);
        return { faults: faults.list() };
      case 'delay':
        if (!request.shape) throw new FleetboxError('bad_request', 'delay needs a shape');
        for (const name of targets) await faults.delay(name, request.shape, request.to);
        return { faults: faults.list() };
      case 'pause':
        for (const name of targets) await faults.pause(name);
        return { faults: faults.list() };
      case 'resume':
        for (const name of targets) await faults.resume(name);
        return { faults: faults.list() };
      case 'heal':
        return faults.heal(request.members);
      case 'crash':
        for (const name of targets) await this.crashMember(name);
        return { faults: faults.list() };
      default:
        return { faults: faults.list() };
    }
  }

  /**
   * Saves every member of the cluster into the snapshot folder `folder` (under snapshots/): all
   * are paused first, so the save is one moment of the whole cluster (no member runs on while
   * another is being saved), then each is saved, then all run on, whatever happened. Refused
   * unless every member runs and no fault is in force (a shaped guest would carry its fault into
   * every fork; a paused one is the user's to resume).
   */
  async snapshot(folder: string): Promise<{ members: { name: string; bytes: number }[]; pausedMs: number }> {
    const faults = this.faultSet;
    if (!faults) throw new FleetboxError('busy', `holder of ${this.cluster} is still starting; retry`);
    if (this.snapshotting) throw new FleetboxError('busy', `a snapshot of ${this.cluster} is being taken; retry when it is done`);
    this.snapshotting = true;
    try {
      // No fault changes while the members stand paused: a pause injected meanwhile would be
      // undone by the resume below, a delay would land in the saved guests.
      return await faults.whileUnchanged((inForce) => this.saveAll(folder, inForce));
    } finally {
      this.snapshotting = false;
    }
  }

  private async saveAll(folder: string, inForce: readonly Fault[]): Promise<{ members: { name: string; bytes: number }[]; pausedMs: number }> {
    const runtimes = [...this.runtimes.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    // Every member of the cluster on disk, not only those held: a stopped one is not in a snapshot.
    const held = new Set(runtimes.map((r) => r.name));
    const absent = listMembers(this.init.store, this.cluster).find((ref) => !held.has(ref.name));
    if (absent) throw new FleetboxError('not_running', `${absent.name} is stopped; a snapshot takes a cluster whose members all run ('fleetbox up ${absent.name}' or 'fleetbox rm ${absent.name}' first)`);
    for (const runtime of runtimes) {
      const { state } = runtime.snapshot();
      if (state !== 'running') throw new FleetboxError('not_running', `${runtime.name} is ${state}; a snapshot takes a cluster whose members all run ('fleetbox up ${runtime.name}' or 'fleetbox rm ${runtime.name}' first)`);
      const why = runtime.cannotSave();
      if (why) throw new FleetboxError('usage', why);
    }
    if (inForce.length > 0) {
      throw new FleetboxError('usage', `faults are in force in ${this.cluster} (${inForce.map(describeFault).join('; ')}); heal them first: fleetbox fault heal ${this.cluster}`);
    }
    const root = join(this.init.store.snapshotsDir, folder);
    if (!existsSync(root)) throw new FleetboxError('not_found', `snapshot folder ${folder} does not exist`);
    const paused: MemberRuntime[] = [];
    const started = performance.now();
    try {
      for (const runtime of runtimes) {
        await runtime.pause();
        paused.push(runtime);
      }
      crashPoint('holder-mid-snapshot');
      await holdPoint('holder-mid-snapshot');
      const members: { name: string; bytes: number }[] = [];
      for (const runtime of runtimes) {
        const dir = join(root, runtime.name);
        mkdirSync(dir, { mode: 0o700 });
        await runtime.saveState(dir);
        members.push({ name: runtime.name, bytes: bytesOnDisk(dir) });
      }
      const pausedMs = Math.round(performance.now() - started);
      this.init.log.info('snapshot_saved', { folder, members: members.length, pausedMs });
      return { members, pausedMs };
    } finally {
      for (const runtime of paused) {
        await runtime.resume().catch((error: unknown) => this.init.log.error('snapshot_resume_failed', { member: runtime.name, message: String(error) }));
      }
    }
  }

  /** A power cut of one member (fault injection); it ends stopped and its socket goes. */
  private async crashMember(name: string): Promise<void> {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new FleetboxError('unknown_member', `member ${name} is not held here`);
    await this.faultSet?.memberStopped(name);
    await runtime.crash();
    this.release(name);
    this.exitIfIdle();
  }

  /** Stops one member and lets go of it: its socket and pidfile disappear. */
  async stopMember(name: string, timeoutMs = this.options.stopTimeoutMs): Promise<MemberStatus> {
    const runtime = this.runtimes.get(name);
    if (!runtime) throw new FleetboxError('unknown_member', `member ${name} is not held here`);
    crashPoint('holder-mid-stop');
    // Faults go first: a paused VM cannot hear the power button, and a stopped member's rules
    // would apply to whoever gets its address next.
    await this.faultSet?.memberStopped(name);
    await runtime.stop(timeoutMs);
    const status = runtime.status();
    this.release(name);
    this.exitIfIdle();
    return status;
  }

  private release(name: string): void {
    this.forwards?.closeMember(name);
    const server = this.servers.get(name);
    if (server) closeUnix(server, this.store.memberSocketPath(name));
    this.servers.delete(name);
    // The last word on the member first, then the pidfile: once that is gone an `rm` may delete
    // the member's directory, so nothing may be written into it after.
    const runtime = this.runtimes.get(name);
    if (runtime) this.persist(runtime);
    removePidfile(this.store.pidfilePath(this.cluster, name), this.instance);
    this.runtimes.delete(name);
  }

  private exitIfIdle(): void {
    // While start() adopts its first members none is active yet; a failure there is start's to report.
    if (this.shuttingDown || !this.started) return;
    if ([...this.runtimes.values()].some((r) => r.active)) return;
    void this.shutdown('no member left running');
  }

  /** Stops every member, tears the network down, removes sockets and pidfiles, then exits. */
  shutdown(reason: string, exitCode = 0): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.log.info('holder_shutdown', { reason });
      this.health?.stop();
      const runtimes = [...this.runtimes.values()];
      await Promise.all(runtimes.map((r) => r.stop(this.options.stopTimeoutMs, true).catch(() => undefined)));
      crashPoint('holder-mid-shutdown');
      for (const runtime of runtimes) this.release(runtime.name);
      for (const name of [...this.servers.keys()]) this.release(name);
      this.forwards?.closeAll();
      this.dialer?.close();
      if (this.controlServer) closeUnix(this.controlServer, this.store.controlSocketPath(this.cluster));
      try {
        await this.network?.close();
      } catch (error) {
        this.log.error('network_close_failed', { message: toFleetboxError(error).message });
      }
      this.log.info('holder_exit', { reason });
      this.init.onExit(exitCode);
    })();
    return this.shuttingDown;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown !== undefined;
  }

  private owned = false;

  get hasOwner(): boolean {
    return this.owned;
  }

  /** Bound mode: the owner's acked connection; its end means the owner is gone. */
  armOwner(socket: Socket): void {
    this.owned = true;
    this.log.info('owner_acked', {});
    socket.once('close', () => void this.shutdown('owner connection closed'));
  }
}
