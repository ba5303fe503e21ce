import { rename, unlink, writeFile } from 'node:fs/promises';
import { setMaxListeners } from 'node:events';
import { unlinkSync } from 'node:fs';
import type { Logger } from '../host/logger.js';
import { heartbeatPath } from '../store/heartbeat.js';
import type { CheckResult, HeartbeatFile } from '../protocol/health.js';
import type { HealthSettings } from '../protocol/holder-options.js';
import type { Store } from '../store/layout.js';
import { processStartTime } from '../host/proc.js';
import { defaultCheckers, runCheck, type HolderChecker, type MemberChecker, type MemberTarget } from './checkers/index.js';

export interface HealthLoop {
  stop(): void;
}

/** Members checked at once within a round. */
const ROUND_CONCURRENCY = 8;

export interface HealthMonitorInit extends Omit<HealthSettings, 'enabled'> {
  store: Store;
  cluster: string;
  log: Logger;
  holder: HeartbeatFile['holder'];
  /** The members to check, read fresh each round (members join and leave). */
  members(): MemberTarget[];
  checkers: { member: MemberChecker[]; holder: HolderChecker[] };
  /** Where heartbeats go; default: clusters/<cluster>/health.json, written atomically. */
  write?: (file: HeartbeatFile) => Promise<void>;
}

/**
 * Runs checker rounds and writes heartbeats, each on its own timer: a round that waits out a
 * hung check's deadline does not delay the heartbeat, and a heartbeat is only missed when the
 * holder's event loop itself is stuck, which is exactly what `stale` is meant to catch. Every
 * round ends with a heartbeat, and the heartbeat timer (1.5 polls) is re-armed by each write, so
 * it only fires when a round is late: one write per poll, not two.
 * Everything is asynchronous; status requests are served between the steps.
 */
export class HealthMonitor implements HealthLoop {
  rounds = 0;
  seq = 0;
  private readonly stopping = new AbortController();
  private readonly memberResults = new Map<string, { checkedAt: string; checks: CheckResult[] }>();
  private holderResults: CheckResult[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private roundTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private writeAgain = false;
  private writeFailing = false;
  private readonly verdicts = new Map<string, string>();

  constructor(private readonly init: HealthMonitorInit) {
    // Every check in flight listens for the loop's stop; a round has dozens in flight on purpose.
    setMaxListeners(0, this.stopping.signal);
  }

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  start(): this {
    this.heartbeat();
    this.scheduleRound(0);
    return this;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopping.abort();
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.roundTimer);
    if (!this.init.write) {
      // A holder that exits leaves no heartbeat behind to be mistaken for a wedged one.
      try {
        unlinkSync(heartbeatPath(this.init.store, this.init.cluster));
      } catch {
        // never written, or the cluster directory is already gone
      }
    }
  }

  /** The heartbeat as it would be written now. */
  record(): HeartbeatFile {
    return {
      version: 1,
      cluster: this.init.cluster,
      holder: this.init.holder,
      heartbeat: new Date().toISOString(),
      seq: this.seq,
      pollMs: this.init.pollMs,
      staleAfterMs: this.init.staleAfterMs,
      rounds: this.rounds,
      checks: this.holderResults,
      members: Object.fromEntries(this.memberResults),
    };
  }

  private scheduleRound(delayMs: number): void {
    if (this.stopped) return;
    this.roundTimer = setTimeout(() => {
      const started = Date.now();
      void this.round().finally(() => this.scheduleRound(Math.max(0, this.init.pollMs - (Date.now() - started))));
    }, delayMs);
    this.roundTimer.unref();
  }

  /**
   * One round: the holder-wide checkers, then every member's checkers, a few members at a time,
   * so a round is a trickle of small async jobs rather than one burst that delays status replies.
   */
  async round(): Promise<void> {
    const { store, checkTimeoutMs } = this.init;
    const signal = this.stopping.signal;
    const options = { timeoutMs: checkTimeoutMs, signal };
    const targets = this.init.members();
    const holderChecks = await Promise.all(this.init.checkers.holder.map((checker) => runCheck(checker, (s) => ({ store, signal: s }), options)));
    const memberChecks: CheckResult[][] = [];
    let next = 0;
    const worker = async () => {
      while (next < targets.length && !this.stopped) {
        const i = next++;
        const member = targets[i] as MemberTarget;
        const inside: MemberChecker[] = member.inside.map((c) => (c.checkNow ? { name: c.name, checkNow: () => c.checkNow() } : { name: c.name, check: ({ signal }) => c.check(signal) }));
        const injected: MemberChecker[] = member.faults.map((detail) => ({ name: 'fault', checkNow: () => ({ status: 'warn', detail: `fault injected: ${detail}` }) }));
        // A paused member is frozen on purpose: every other check would call it dead or hung.
        const checkers = member.paused ? [] : [...this.init.checkers.member, ...inside];
        memberChecks[i] = await Promise.all([...checkers, ...injected].map((checker) => runCheck(checker, (s) => ({ store, signal: s, member }), options)));
      }
    };
    await Promise.all(Array.from({ length: Math.min(ROUND_CONCURRENCY, targets.length) }, worker));
    if (this.stopped) return;
    this.holderResults = holderChecks;
    this.logChanges('holder', this.holderResults);
    const present = new Set(targets.map((t) => t.name));
    for (const name of this.memberResults.keys()) if (!present.has(name)) this.memberResults.delete(name);
    targets.forEach((member, i) => {
      const checks = memberChecks[i] ?? [];
      this.memberResults.set(member.name, { checkedAt: new Date().toISOString(), checks });
      this.logChanges(member.name, checks);
    });
    this.rounds++;
    this.heartbeat();
  }

  /** Logs a check when its verdict changes, not every round: a broken checker must not flood the log. */
  private logChanges(subject: string, checks: CheckResult[]): void {
    for (const check of checks) {
      const key = `${subject}\0${check.name}`;
      const before = this.verdicts.get(key);
      if (before === check.status) continue;
      this.verdicts.set(key, check.status);
      if (check.status === 'fail' || check.status === 'warn') {
        this.init.log.warn(check.status === 'fail' ? 'check_failed' : 'check_warning', { member: subject, check: check.name, detail: check.detail });
      } else if (before === 'fail' || before === 'warn') {
        this.init.log.info('check_recovered', { member: subject, check: check.name, status: check.status });
      }
    }
  }

  /** Writes the heartbeat; overlapping calls coalesce into one more write after the current one. */
  heartbeat(): void {
    if (this.stopped) return;
    if (this.writing) {
      this.writeAgain = true;
      return;
    }
    this.seq++;
    // 1.5 polls: a round that ends a little later than the one before must not make it fire
    // (two writes in that poll); stale is never below two polls plus a check, so a late round
    // still has its heartbeat written in time.
    if (this.heartbeatTimer) this.heartbeatTimer.refresh();
    else this.heartbeatTimer = setTimeout(() => this.heartbeat(), Math.round(this.init.pollMs * 1.5)).unref();
    const file = this.record();
    const custom = this.init.write;
    this.writing = (custom ? custom(file) : this.writeFile(file))
      .then(() => {
        if (this.writeFailing) this.init.log.info('heartbeat_recovered', {});
        this.writeFailing = false;
      })
      .catch((error: unknown) => {
        if (!this.writeFailing) this.init.log.error('heartbeat_write_failed', { message: String(error) });
        this.writeFailing = true;
      })
      .finally(() => {
        this.writing = undefined;
        if (this.writeAgain) {
          this.writeAgain = false;
          this.heartbeat();
        }
      });
  }

  private async writeFile(file: HeartbeatFile): Promise<void> {
    const path = heartbeatPath(this.init.store, this.init.cluster);
    const tmp = `${path}.${process.pid}.tmp`;
    // No fsync: a heartbeat lost to a power cut is harmless, and fsync would stall the loop.
    try {
      await writeFile(tmp, JSON.stringify(file) + '\n', { mode: 0o600 });
      if (this.stopped) throw new Error('health loop stopped');
      await rename(tmp, path);
    } catch (error) {
      // A full disk (or a stop mid-write) must not leave a half-written temporary file behind.
      await unlink(tmp).catch(() => undefined);
      if (!this.stopped) throw error;
    }
  }
}

/** What the health loop needs of its holder, and no more. */
export interface HealthSubject {
  readonly store: Store;
  readonly cluster: string;
  readonly log: Logger;
  readonly instance: string;
  readonly settings: HealthSettings;
  /** The members to check, read fresh each round. */
  members(): MemberTarget[];
}

/**
 * Runs the holder's health checkers and heartbeats on a poll period (DESIGN §8).
 * Started once the holder's members are adopted; stopped at shutdown.
 */
export function startHealthLoop(subject: HealthSubject): HealthLoop {
  const { settings } = subject;
  if (!settings.enabled) {
    // No checks and no heartbeat: `status` then shows this cluster's members amber (no_heartbeat).
    subject.log.info('health_loop_off', {});
    return { stop() {} };
  }
  subject.log.info('health_loop_start', { ...settings });
  return new HealthMonitor({
    ...settings,
    store: subject.store,
    cluster: subject.cluster,
    log: subject.log,
    holder: { pid: process.pid, startTime: processStartTime(process.pid) ?? '0', instance: subject.instance },
    members: () => subject.members(),
    checkers: defaultCheckers(),
  }).start();
}
