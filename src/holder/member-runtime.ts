import type { AppliedShape, Backend, BackendContext, MemberExecOptions, MemberExecResult, MemberHandle } from '../backend/types.js';
import { isActiveState } from '../protocol/health-levels.js';
import type { InsideCheck } from './checkers/index.js';
import type { Logger } from '../host/logger.js';
import type { ClusterNetwork } from '../net/types.js';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError, toFleetboxError } from '../protocol/errors.js';
import { signalRecorded } from '../host/proc.js';
import type { MemberState, MemberStatus } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberConfig } from '../store/member-config.js';

const PROBE_INTERVAL_MS = 25;
/** A member shows `downloading` once its preparation has taken this long (or reported progress). */
const PREPARE_SHOWN_AFTER_MS = 100;

export interface RuntimeEvents {
  /** Every state change, so the holder can persist state.json and wake waiters. */
  onChange(runtime: MemberRuntime): void;
}

/** Where a member is in its life, as the rest of the holder sees it (read-only). */
export interface RuntimeSnapshot {
  state: MemberState;
  /** When it entered `state`. */
  since: string;
  error: string | undefined;
  progress: string | undefined;
  ip: string | null;
  handle: MemberHandle | undefined;
}

/**
 * One member's life inside the holder: prepare → start → probe → running → stopping → stopped,
 * or error from any step. Owns the member's process handle and its network attachment.
 */
export class MemberRuntime {
  /** Changed only here, by the lifecycle's own steps. */
  private readonly now: RuntimeSnapshot = { state: 'starting', since: new Date().toISOString(), error: undefined, progress: undefined, ip: null, handle: undefined };
  private abort = new AbortController();
  private ctx: BackendContext | undefined;
  private stopping: Promise<void> | undefined;
  private booting: Promise<void> | undefined;

  constructor(
    readonly config: MemberConfig,
    private readonly backend: Backend,
    private readonly network: ClusterNetwork,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly events: RuntimeEvents,
  ) {}

  get name(): string {
    return this.config.name;
  }

  snapshot(): Readonly<RuntimeSnapshot> {
    return { ...this.now };
  }

  get state(): MemberState {
    return this.now.state;
  }

  get ip(): string | null {
    return this.now.ip;
  }

  get handle(): MemberHandle | undefined {
    return this.now.handle;
  }

  /** Where the member sits on the cluster network, once attached. */
  get memberNetwork() {
    return this.ctx?.network;
  }

  /** Active members keep the holder alive; stopped and errored ones do not. */
  get active(): boolean {
    return isActiveState(this.now.state);
  }

  status(): MemberStatus {
    return {
      name: this.name,
      pid: this.now.handle?.pid ?? null,
      running: this.now.state === 'running',
      ip: this.now.ip,
      state: this.now.state,
      ...(this.now.error !== undefined && { error: this.now.error }),
      ...(this.now.progress !== undefined && this.now.state === 'downloading' && { progress: this.now.progress }),
      since: this.now.since,
    };
  }

  private set(state: MemberState, error?: string): void {
    // The same state again (starting at adopt, then at boot) is no change: no write, no log line.
    if (state === this.now.state && error === this.now.error) return;
    this.now.state = state;
    this.now.error = error;
    this.now.since = new Date().toISOString();
    this.log.info('member_state', { member: this.name, state, ...(error !== undefined && { error }) });
    this.events.onChange(this);
  }

  /** Boots the member; resolves when it is running or has failed (the state says which). */
  boot(): Promise<void> {
    this.abort = new AbortController();
    this.stopping = undefined;
    this.now.error = undefined;
    this.booting = this.runBoot().finally(() => (this.booting = undefined));
    return this.booting;
  }

  private async runBoot(): Promise<void> {
    const signal = this.abort.signal;
    let ctx: BackendContext | undefined;
    try {
      this.set('starting');
      const network = await this.network.attach(this.name);
      this.now.ip = network.ip;
      crashPoint('holder-mid-network-setup');
      ctx = { store: this.store, config: this.config, network, log: this.log, signal };
      this.ctx = ctx;
      // `downloading` only once preparing takes a while or has something to say: an instant
      // prepare (a plain process, a cached image) is not a state anyone sees, and each state
      // change is a write of state.json (a hundred members starting at once paid for it).
      let preparing = false;
      const showPreparing = () => {
        if (preparing) return;
        preparing = true;
        this.set('downloading');
      };
      const slow = setTimeout(showPreparing, PREPARE_SHOWN_AFTER_MS);
      try {
        await this.backend.prepare(ctx, (message) => {
          this.now.progress = message;
          this.log.info('member_progress', { member: this.name, message });
          if (preparing) this.events.onChange(this);
          else showPreparing();
        });
      } finally {
        clearTimeout(slow);
      }
      if (signal.aborted) return;
      if (preparing) this.set('starting');
      // The boot budget starts only now: preparation (downloads, image builds) is not charged to it.
      const deadline = Date.now() + this.config.bootTimeoutMs;
      this.now.handle = await this.backend.start(ctx);
      crashPoint('holder-mid-boot');
      this.events.onChange(this);
      const handle = this.now.handle;
      let exited = false;
      void handle.exited.then((info) => {
        exited = true;
        this.onExit(info.code, info.signal, info.reason);
      });
      while (!signal.aborted) {
        if (exited) {
          throw new FleetboxError('boot_failed', `${this.name} exited during boot; ${this.tail(ctx)}`);
        }
        if (await this.backend.probe(ctx, handle)) break;
        if (Date.now() > deadline) {
          throw new FleetboxError(
            'boot_timeout',
            `${this.name} did not answer within the boot timeout of ${this.config.bootTimeoutMs} ms; ${this.tail(ctx)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
      }
      if (signal.aborted || exited) return;
      this.set('running');
    } catch (error) {
      if (signal.aborted) return;
      const failure = toFleetboxError(error, 'boot_failed');
      this.log.error('boot_failed', { member: this.name, code: failure.code, message: failure.message });
      // A member that failed to boot must not keep a half-started process behind.
      if (this.now.handle && ctx) await this.backend.stop(ctx, this.now.handle, 1_000).catch(() => undefined);
      await this.network.detach(this.name).catch(() => undefined);
      this.set('error', failure.message);
    }
  }

  /** Runs a command in the member; only a running member takes one. */
  exec(command: string, options: MemberExecOptions): Promise<MemberExecResult> {
    if (this.now.state !== 'running' || !this.ctx) return Promise.reject(this.notRunning());
    return this.backend.exec(this.ctx, command, options);
  }

  /** Writes a file in the member; only a running member takes one. */
  writeFile(path: string, data: Buffer, append: boolean): Promise<void> {
    if (this.now.state !== 'running' || !this.ctx) return Promise.reject(this.notRunning());
    return this.backend.writeFile(this.ctx, path, data, append);
  }

  /** Reads part of a file in the member; only a running member takes one. */
  readFile(path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
    if (this.now.state !== 'running' || !this.ctx) return Promise.reject(this.notRunning());
    return this.backend.readFile(this.ctx, path, offset, count);
  }

  /** Freezes the running member (fault injection); verified by the backend. */
  pause(): Promise<void> {
    if (this.now.state !== 'running' || !this.ctx || !this.now.handle) return Promise.reject(this.notRunning());
    return this.backend.pause(this.ctx, this.now.handle);
  }

  resume(): Promise<void> {
    if (this.now.state !== 'running' || !this.ctx || !this.now.handle) return Promise.reject(this.notRunning());
    return this.backend.resume(this.ctx, this.now.handle);
  }

  /** Why the member cannot be saved now, or undefined. */
  cannotSave(): string | undefined {
    if (this.now.state !== 'running' || !this.ctx) return `${this.name} is ${this.now.state}`;
    if (!this.backend.saveState) return `${this.name} is a ${this.config.backend} member, which cannot be saved; snapshots take members that are VMs`;
    return this.backend.cannotSave?.(this.ctx);
  }

  /** Saves the paused member whole into `dir` (a snapshot); refused by a backend that cannot. */
  saveState(dir: string): Promise<void> {
    if (this.now.state !== 'running' || !this.ctx || !this.now.handle) return Promise.reject(this.notRunning());
    if (!this.backend.saveState) {
      return Promise.reject(new FleetboxError('usage', `${this.name} is a ${this.config.backend} member, which cannot be saved; snapshots take members that are VMs`));
    }
    return this.backend.saveState(this.ctx, this.now.handle, dir);
  }

  /** Shapes (or with undefined, stops shaping) what the running member sends; verified by the backend. */
  shapeNetwork(shape: AppliedShape | undefined): Promise<void> {
    if (this.now.state !== 'running' || !this.ctx) return Promise.reject(this.notRunning());
    return this.backend.shapeNetwork(this.ctx, shape);
  }

  private notRunning(): FleetboxError {
    return new FleetboxError('not_running', `${this.name} is ${this.now.state}; start it first ('fleetbox up ${this.name}')`);
  }

  /** The backend's checks of what runs inside the member, bound to it; none unless it runs. */
  healthChecks(): InsideCheck[] {
    const { ctx } = this;
    const { handle } = this.now;
    if (this.now.state !== 'running' || !ctx || !handle) return [];
    return this.backend.healthChecks.map((c) =>
      c.checkNow ? { name: c.name, checkNow: () => c.checkNow(ctx, handle) } : { name: c.name, check: (signal: AbortSignal) => c.check(ctx, signal, handle) },
    );
  }

  private tail(ctx: BackendContext): string {
    const text = this.backend.diagnose(ctx).trim();
    return text ? `last output:\n${text}` : 'it printed nothing';
  }

  private onExit(code: number | null, signal: string | null, reason?: string): void {
    if (this.stopping || this.now.state === 'error' || this.now.state === 'stopped') return;
    if (this.now.state !== 'running') return; // boot loop reports it
    const how = signal ? `signal ${signal}` : `code ${code}`;
    this.log.warn('member_exited', { member: this.name, code, signal, ...(reason && { reason }) });
    void this.network.detach(this.name).catch(() => undefined);
    this.set('error', reason ? `${this.name} was stopped: ${reason}` : `${this.name} exited unexpectedly (${how})`);
  }

  /**
   * Stops the member (abandoning a boot in progress); concurrent calls share one stop. With
   * `keepError`, a member that already failed keeps its error state so the reason stays on disk.
   */
  stop(timeoutMs: number, keepError = false): Promise<void> {
    this.stopping ??= this.runStop(timeoutMs, keepError);
    return this.stopping;
  }

  /**
   * A power cut (fault injection): the member's process is killed at once, with no shutdown in
   * the guest; what its disk holds is what the guest had written. The member ends `stopped`, so
   * `up` starts it again like any stopped member.
   */
  crash(): Promise<void> {
    if (this.now.state !== 'running' || !this.now.handle) return Promise.reject(this.notRunning());
    const handle = this.now.handle;
    this.log.warn('member_crash_injected', { member: this.name, pid: handle.pid });
    signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
    this.stopping ??= handle.exited.then(() => this.runStop(1_000, false));
    return this.stopping;
  }

  private async runStop(timeoutMs: number, keepError: boolean): Promise<void> {
    if (this.now.state === 'stopped') return;
    const failed = this.now.state === 'error' && keepError;
    if (!failed) this.set('stopping');
    this.abort.abort();
    await this.booting;
    if (this.now.handle && this.ctx) {
      try {
        await this.backend.stop(this.ctx, this.now.handle, timeoutMs);
      } catch (error) {
        this.log.error('stop_failed', { member: this.name, message: String(error) });
      }
    }
    await this.network.detach(this.name).catch(() => undefined);
    this.now.handle = undefined;
    if (failed) this.events.onChange(this);
    else this.set('stopped');
  }
}
