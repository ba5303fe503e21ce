import { readFileSync } from 'node:fs';
import { addMember, type AddBudget } from '../control/add-member.js';
import { forwardPort } from '../control/forward.js';
import { getStatus, type MemberView } from '../control/status.js';
import { stopMember } from '../control/stop.js';
import { up } from '../control/up.js';
import { FleetboxError } from '../protocol/errors.js';
import type { MemberState } from '../protocol/schemas.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { checkFaultOrder, sendFaultOrder, type FaultOrder } from '../control/faults.js';
import type { Fault } from '../protocol/schemas.js';
import { copyFromMember, copyToMember, type CopyOptions } from './copy.js';
import { execOn, type ExecOptions, type ExecResult } from './exec.js';

/** How `member.delay()` shapes what a member sends. */
export interface DelayOptions {
  /** Milliseconds added to every packet. */
  ms?: number;
  /** Up to ± this many milliseconds of variation (packets may be reordered). */
  jitterMs?: number;
  /** Share of packets dropped, 0–100. */
  lossPercent?: number;
  /** Sending rate limit in tc's words: '1mbit', '500kbit', '10mbps'. */
  rate?: string;
  /** Only what is sent to these members (default: everything). */
  to?: (string | Member)[];
}

/** The request found nobody listening on the member's socket (no holder: the member is not up). */
function noHolder(error: unknown): boolean {
  if (!(error instanceof FleetboxError) || error.code !== 'unreachable') return false;
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return cause?.code === 'ENOENT' || cause?.code === 'ECONNREFUSED';
}

/** One machine of a cluster, as a test sees it. */
export class Member {
  /** Last status this handle saw; `refresh()` asks the holder again. */
  private view: MemberView;

  constructor(
    private readonly store: Store,
    view: MemberView,
    private readonly timeouts: AddBudget,
  ) {
    this.view = view;
  }

  get name(): string {
    return this.view.name;
  }
  get cluster(): string {
    return this.view.cluster;
  }
  /** Address on the cluster network (kept across stop/start). */
  get ip(): string {
    return this.view.ip ?? '';
  }
  get state(): MemberState {
    return this.view.state;
  }
  get pid(): number | null {
    return this.view.pid;
  }

  private get ref(): MemberRef {
    return { cluster: this.view.cluster, name: this.view.name };
  }

  async refresh(): Promise<MemberView> {
    this.view = await getStatus(this.store, this.ref);
    return this.view;
  }

  /** Throws `not_running` unless the holder says the member runs: no command ever hangs on a stopped member. */
  private async running(): Promise<MemberView> {
    const view = await this.refresh();
    if (view.state !== 'running' || !view.ip) {
      throw new FleetboxError('not_running', `${this.name} is ${view.state}; start it with member.start() first`);
    }
    return view;
  }

  /** Runs a shell command on the member: `{ stdout, stderr, exitCode }`; `exec_timeout` past `timeoutMs`. */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    // Straight to the holder, which refuses a member that does not run: a status request first
    // would double the trips of every command. Only when no holder listens is the status asked,
    // to say why.
    try {
      return await execOn({ store: this.store, config: { name: this.name } }, command, options);
    } catch (error) {
      if (noHolder(error)) await this.running();
      throw error;
    }
  }

  /** Copies a host file (or, with `recursive`, a folder) onto the member, modes kept (`remotePath` on the guest; on the host for process members). */
  async copyTo(localPath: string, remotePath: string, options: CopyOptions = {}): Promise<void> {
    await copyToMember(this.store, this.ref, localPath, remotePath, options);
  }

  /** Copies a file (or, with `recursive`, a folder) from the member to the host, modes kept. */
  async copyFrom(remotePath: string, localPath: string, options: CopyOptions = {}): Promise<void> {
    await copyFromMember(this.store, this.ref, remotePath, localPath, options);
  }

  /**
   * A loopback address on the host piped to `port` of this member, owned by its holder and
   * closed when the member stops: `{ host: '127.0.0.1', port }`.
   */
  async forward(port: number): Promise<{ host: string; port: number }> {
    await this.running();
    const { host, port: hostPort } = await forwardPort(this.store, this.ref, port);
    return { host, port: hostPort };
  }

  /** Cuts this member off from every other member of its cluster; resolves once in force. */
  async isolate(): Promise<Fault[]> {
    return (await this.fault({ op: 'isolate', members: [this.name] })).faults;
  }

  /**
   * Shapes what this member sends, with netem inside the guest: `ms` of delay varied by up to
   * ± `jitterMs`, `lossPercent` of packets dropped, the sending rate limited to `rate` (e.g.
   * '1mbit'); with `to`, only what it sends to those members. Replaces the member's previous
   * delay; resolves once the guest reports it in force. `heal()` ends it.
   */
  async delay(options: DelayOptions): Promise<Fault[]> {
    const to = options.to?.map((m) => (typeof m === 'string' ? m : m.name));
    const shape = { delayMs: options.ms ?? 0, jitterMs: options.jitterMs ?? 0, lossPercent: options.lossPercent ?? 0, ...(options.rate !== undefined && { rate: options.rate }) };
    return (await this.fault({ op: 'delay', members: [this.name], shape, ...(to && { to }) })).faults;
  }

  /** Freezes the member (QMP stop): no clock, no processes, no network; memory and uptime kept. */
  async pause(): Promise<Fault[]> {
    return (await this.fault({ op: 'pause', members: [this.name] })).faults;
  }

  async resume(): Promise<Fault[]> {
    return (await this.fault({ op: 'resume', members: [this.name] })).faults;
  }

  /**
   * A power cut: the member is killed with no shutdown in the guest and ends stopped; its disk
   * keeps what the guest had written. `start()` (or `fleetbox up`) boots it again.
   */
  async crash(): Promise<void> {
    await this.fault({ op: 'crash', members: [this.name] });
  }

  /** Ends every fault touching this member. */
  async heal(): Promise<Fault[]> {
    return (await this.fault({ op: 'heal', members: [this.name] })).healed ?? [];
  }

  private async fault(order: FaultOrder): Promise<{ faults: Fault[]; healed?: Fault[] }> {
    checkFaultOrder(order);
    return sendFaultOrder(this.store, this.name, order);
  }

  /** Graceful stop; the member keeps its address and disk for a later start(). */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    await stopMember(this.store, this.ref, options);
    await this.refresh();
  }

  /** Starts a stopped member again; it re-joins its live cluster's network. */
  async start(): Promise<void> {
    try {
      await addMember(this.store, this.name, this.timeouts);
    } catch (error) {
      if (!(error instanceof FleetboxError) || error.code !== 'not_running') throw error;
      // No live holder: the cluster was stopped as a whole; a new (detached) holder takes it.
      await up(this.store, { names: [this.name], ...this.timeouts });
    }
    await this.refresh();
  }

  /** The member's console (qemu: the guest's serial log; process: its stdout and stderr). */
  logs(): string {
    try {
      return readFileSync(this.store.serialLogPath(this.cluster, this.name), 'utf8');
    } catch {
      return '';
    }
  }
}
