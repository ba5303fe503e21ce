import type { CheckStatus } from '../../protocol/health-levels.js';
import type { MemberState } from '../../protocol/schemas.js';
import type { Store } from '../../store/layout.js';

/** What a member checker may look at: a copy taken at the start of the round, never the runtime. */
export interface MemberTarget {
  name: string;
  cluster: string;
  backend: string;
  state: MemberState;
  since: string;
  ip: string | null;
  /** process backend: the port the member listens on. */
  port: number;
  /** The member's own process (VM or plain process), once started. */
  process: { pid: number; startTime: string } | null;
  /** The backend's checks inside the member (agent, SSH), bound to it; empty unless it runs. */
  inside: InsideCheck[];
  /** Faults injected into this member, as an operator reads them (with the command that heals each). */
  faults: string[];
  /** Frozen by a pause fault: only the fault itself is reported; every other check would fail. */
  paused: boolean;
}

/** A backend's check of one member, bound to it: waits (with a deadline) or answers at once. */
export type InsideCheck = { name: string; check(signal: AbortSignal): Promise<CheckOutcome>; checkNow?: never } | { name: string; checkNow(): CheckOutcome; check?: never };

export interface HolderCheckContext {
  store: Store;
  /** Aborted when the check's deadline passes or the loop stops: stop work, release sockets. */
  signal: AbortSignal;
}

export interface MemberCheckContext extends HolderCheckContext {
  member: MemberTarget;
}

/** `skip`: the check does not apply now (member not started, other backend). */
export interface CheckOutcome {
  status: CheckStatus;
  detail: string;
}

/**
 * A health check that waits on something (a socket, a file system). It may be slow, hang or
 * throw: the loop gives it a deadline, aborts its signal when that passes and reports a failing
 * check either way; the loop and the holder keep going.
 */
export interface WaitingChecker<C> {
  readonly name: string;
  check(ctx: C): Promise<CheckOutcome>;
  checkNow?: never;
}

/**
 * A health check that answers at once from the kernel's own tables (/proc), with nothing to wait
 * on: it runs without a deadline timer, an abort controller or a promise race. Those cost more
 * than the check itself, two checks per member per round (an idle holder of 100 members).
 */
export interface ImmediateChecker<C> {
  readonly name: string;
  checkNow(ctx: C): CheckOutcome;
  check?: never;
}

export type Checker<C> = WaitingChecker<C> | ImmediateChecker<C>;

export type MemberChecker = Checker<MemberCheckContext>;
export type HolderChecker = Checker<HolderCheckContext>;
