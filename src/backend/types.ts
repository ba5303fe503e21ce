import type { Store } from '../store/layout.js';
import type { BackendKind, MemberConfig } from '../store/member-config.js';
import type { Logger } from '../host/logger.js';
import type { ClusterNetwork, MemberNetwork, NetworkPlan } from '../net/types.js';
import type { CheckStatus } from '../protocol/health-levels.js';
import type { NetworkShape } from '../protocol/schemas.js';

/** A shape to put in force, with the member addresses it is limited to (none: all traffic). */
export interface AppliedShape extends NetworkShape {
  toAddresses?: readonly string[];
}

export interface BackendContext {
  store: Store;
  config: MemberConfig;
  network: MemberNetwork;
  log: Logger;
  /** Aborted when the member is told to stop while it prepares or boots. */
  signal: AbortSignal;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Why the backend ended the member itself (e.g. its file server died), when it did. */
  reason?: string;
}

/** A started member: the process the holder supervises. */
export interface MemberHandle {
  pid: number;
  /** /proc start time of `pid`, recorded so reconcile never kills a reused PID. */
  startTime: string;
  /** Settles when the member's process has exited, for any reason. Never rejects. */
  exited: Promise<ExitInfo>;
  /** The cgroup holding every process of the member, where the backend made one. */
  cgroup?: string;
}

export interface MemberExecOptions {
  /** Whole-command budget; on expiry the command and what it started are killed, `exec_timeout` thrown. */
  timeoutMs: number;
  /** The command's standard input. */
  input?: Buffer;
}

export interface MemberExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
  /** The backend kept only part of the output (qemu-ga keeps 16 MiB of each stream). */
  truncated: boolean;
}

/**
 * A health check that looks inside a running member, run by the holder's health loop: `warn`
 * makes the member amber, `fail` red. One that waits (a socket, the guest) gets a deadline and
 * must give up when `signal` aborts; one that answers at once from the host's own tables
 * (/proc) gives `checkNow` instead and runs without a timer.
 */
export type MemberHealthCheck = WaitingHealthCheck | ImmediateHealthCheck;

export interface WaitingHealthCheck {
  readonly name: string;
  check(ctx: BackendContext, signal: AbortSignal, handle: MemberHandle): Promise<HealthOutcome>;
  checkNow?: never;
}

export interface ImmediateHealthCheck {
  readonly name: string;
  checkNow(ctx: BackendContext, handle: MemberHandle): HealthOutcome;
  check?: never;
}

export interface HealthOutcome {
  status: CheckStatus;
  detail: string;
}

/** A holder's settings that reach its backend (from HolderOptions). */
export interface BackendSettings {
  /** Forces the accelerator of VM members instead of the probe's verdict. */
  accel?: 'kvm' | 'tcg';
  /** false: VM members run commands through the guest agent only (a way round the exec ports, and a baseline). */
  execPorts?: boolean;
}

/** One line of `fleetbox doctor`. */
export interface Prerequisite {
  name: string;
  ok: boolean;
  /** false: fleetbox works without it, only slower or with less (e.g. KVM). */
  required: boolean;
  detail: string;
  /** What to run to fix it; null when ok or when nothing can be run. */
  fix: string | null;
  /** Debian package that provides it, when installing one fixes it. */
  package?: string;
  /** Setup fixes it by downloading from the Debian mirror (so it needs a fresh apt index). */
  downloadsWithApt?: boolean;
}

/**
 * What a backend needs of the host, and its one-time preparation: `fleetbox doctor`, `fleetbox
 * setup` and the vitest fixtures call this without knowing which backends exist.
 */
export interface BackendSetup {
  /** Why this machine cannot run members of this backend at all, or undefined. Cheap: looks only. */
  cannotRun(): string | undefined;
  /** One line per prerequisite, in the order doctor prints them. Looks only: never downloads, builds or boots. */
  check(store: Store): Promise<Prerequisite[]>;
  /**
   * After the missing packages are installed: whatever makes the first start fast (a download,
   * an image, a probe, a template). Idempotent; `progress` narrates long steps.
   */
  prepare(store: Store, settings: BackendSettings, progress: (message: string) => void): Promise<void>;
}

/**
 * What boots members. `src/holder` is the only code that touches a backend (DESIGN §2).
 * Lifecycle: prepare (cacheable, may download: state `downloading`, not charged to the boot
 * budget) → start → probe until true (state `starting` → `running`) → stop.
 */
export interface Backend {
  readonly kind: BackendKind;
  /** Cluster network for this backend; called once per holder. */
  /** `plan`: where a network made now puts its members (a fork); an existing one keeps its own. */
  openNetwork(store: Store, cluster: string, log: Logger, plan?: NetworkPlan): Promise<ClusterNetwork>;
  prepare(ctx: BackendContext, progress: (message: string) => void): Promise<void>;
  start(ctx: BackendContext): Promise<MemberHandle>;
  /** True once the member answers; false while it still boots. Must not throw for "not yet". */
  probe(ctx: BackendContext, handle: MemberHandle): Promise<boolean>;
  /**
   * Graceful stop within `timeoutMs`, then escalation; resolves once the process is gone, and
   * with it everything in the member's cgroup (what the member started, setsid or not).
   */
  stop(ctx: BackendContext, handle: MemberHandle, timeoutMs: number): Promise<void>;
  /** A short text that helps explain a failed boot (e.g. the serial console's last lines). */
  diagnose(ctx: BackendContext): string;
  /** Runs a shell command in a running member (`/bin/sh -c`) and collects its output. */
  exec(ctx: BackendContext, command: string, options: MemberExecOptions): Promise<MemberExecResult>;
  /** Writes (or with `append` adds to) a file in a running member. */
  writeFile(ctx: BackendContext, path: string, data: Buffer, append: boolean): Promise<void>;
  /** Up to `count` bytes of a file in a running member from `offset`; `eof` once there are no more. */
  readFile(ctx: BackendContext, path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }>;
  /**
   * Freezes a running member (its clock, processes and network stop; memory is kept) and
   * resolves once the backend reports it frozen; `resume` lets it run on where it stopped.
   */
  pause(ctx: BackendContext, handle: MemberHandle): Promise<void>;
  resume(ctx: BackendContext, handle: MemberHandle): Promise<void>;
  /**
   * Delays, drops or slows what a running member sends (only to `toAddresses` when given), or with
   * `undefined` ends that; resolves once the member reports the change in force.
   */
  shapeNetwork(ctx: BackendContext, shape: AppliedShape | undefined): Promise<void>;
  /**
   * Saves a paused member whole (memory, devices, disk) into the empty folder `dir`, with what a
   * start needs to restore it (a member whose config has `restore`). Absent: the backend's
   * members cannot be saved. The member stays paused; the caller resumes it.
   */
  saveState?(ctx: BackendContext, handle: MemberHandle, dir: string): Promise<void>;
  /** Why this running member cannot be saved (asked of every member before any is paused), or undefined. */
  cannotSave?(ctx: BackendContext): string | undefined;
  /** Checks of what runs inside a member (e.g. its agent and SSH server); may be empty. */
  readonly healthChecks: readonly MemberHealthCheck[];
}
