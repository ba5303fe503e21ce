import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { getStatus, type MemberView } from './status.js';
import { tailText } from './tail.js';
import { HOLDER_ANSWER_MS } from './unresponsive.js';

const POLL_MS = 25;
/** Many members polled every 25 ms would keep a busy holder busier; back off with the count. */
const pollInterval = (members: number) => Math.min(250, POLL_MS * Math.max(1, Math.ceil(members / 4)));

export interface WaitOptions {
  /** Boot budget; time spent `downloading` (image preparation) is not charged to it. */
  timeoutMs: number;
  /** Separate budget for preparation (downloads, image builds). */
  prepareTimeoutMs?: number;
  /** Called when a member's state or progress changes (for the CLI's progress lines). */
  onChange?(view: MemberView): void;
}

/**
 * Polls until every member is running with an address. Fails fast on `error` (and on a member
 * that went back to stopped, i.e. its holder died) instead of waiting out the budget.
 */
export async function waitMembers(store: Store, refs: MemberRef[], options: WaitOptions): Promise<MemberView[]> {
  const prepareTimeoutMs = options.prepareTimeoutMs ?? 30 * 60_000;
  let bootUsed = 0;
  let prepareUsed = 0;
  let last = Date.now();
  const seen = new Map<string, string>();
  for (;;) {
    const views = await Promise.all(refs.map((ref) => getStatus(store, ref)));
    const now = Date.now();
    const downloading = views.some((v) => v.state === 'downloading');
    if (downloading) prepareUsed += now - last;
    else bootUsed += now - last;
    last = now;
    for (const view of views) {
      const key = `${view.state}|${view.progress ?? ''}`;
      if (seen.get(view.name) !== key) {
        seen.set(view.name, key);
        options.onChange?.(view);
      }
    }
    const failed = views.find((v) => v.state === 'error');
    if (failed) throw new FleetboxError('boot_failed', failed.error ?? `${failed.name} failed to start`);
    // No answer with a live holder (pidfile trusted) means busy, not gone: keep waiting.
    const gone = views.find((v) => v.source === 'disk' && v.holderPid === null);
    if (gone) {
      throw new FleetboxError('holder_failed', `${gone.name} has no live holder any more (state ${gone.state}); see 'fleetbox logs' or the holder log under ${store.logsDir}`);
    }
    if (views.every((v) => v.state === 'running' && v.ip)) return views;
    // The holder enforces the same budget from a later start (its process spawn) and reaps the
    // member; its verdict, with the member's own output, gets a moment to arrive first.
    if (bootUsed > options.timeoutMs + HOLDER_ANSWER_MS) {
      const slow = views.filter((v) => v.state !== 'running');
      const first = slow[0];
      const console = first ? tailText(store.serialLogPath(first.cluster, first.name), 10) : '';
      throw new FleetboxError(
        'boot_timeout',
        `boot timeout of ${options.timeoutMs} ms expired waiting for ${slow.map((v) => `${v.name} (${v.state})`).join(', ')}; console of ${first?.name}: ${console}`,
      );
    }
    if (prepareUsed > prepareTimeoutMs) {
      throw new FleetboxError('prepare_timeout', `image preparation took longer than ${prepareTimeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollInterval(refs.length)));
  }
}
