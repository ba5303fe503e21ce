import type { Store } from '../store/layout.js';
import type { BackendKind, MemberConfig } from '../store/member-config.js';

/** Structured log of the holder: one JSON object a line in logs/holder-<cluster>.log. */
export interface Logger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** Where one member sits on its cluster's network. */
export interface MemberNetwork {
  ip: string;
  prefix: number;
  gateway: string | null;
  /** Network namespace the member's process must run in (bridge networks), else null. */
  namespace: string | null;
  /** Tap device inside the namespace (qemu), else null. */
  tap: string | null;
  /** Deterministic MAC derived from the member name. */
  mac: string;
}

/** A cluster's network, owned by its holder for as long as it runs. */
export interface ClusterNetwork {
  readonly cluster: string;
  /** Gives `member` its address (the recorded one on a re-join) and any device it needs. */
  attach(member: string): Promise<MemberNetwork>;
  /** Releases the member's device; its address stays recorded for a re-join. */
  detach(member: string): Promise<void>;
  /** Tears the whole network down and removes its record once the teardown is verified. */
  close(): Promise<void>;
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

/**
 * What boots members. `src/holder` is the only code that touches a backend (DESIGN §2).
 * Lifecycle: prepare (cacheable, may download: state `downloading`, not charged to the boot
 * budget) → start → probe until true (state `starting` → `running`) → stop.
 */
export interface Backend {
  readonly kind: BackendKind;
  /** Cluster network for this backend; called once per holder. */
  openNetwork(store: Store, cluster: string, log: Logger): Promise<ClusterNetwork>;
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
}
