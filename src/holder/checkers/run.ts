import type { CheckResult } from '../../protocol/health.js';
import { CHECK_STATUSES } from '../../protocol/health-levels.js';
import type { Checker, CheckOutcome, HolderCheckContext } from './types.js';

function isOutcome(value: unknown): value is CheckOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const { status, detail } = value as { status?: unknown; detail?: unknown };
  return (CHECK_STATUSES as readonly unknown[]).includes(status) && typeof detail === 'string';
}

/** The verdict of a checker's answer: garbage is a failing check. */
function outcomeOf(answer: unknown): CheckOutcome {
  return isOutcome(answer) ? answer : { status: 'fail', detail: 'checker returned no {status, detail}' };
}

function threw(error: unknown): CheckOutcome {
  const message = error instanceof Error ? error.message : String(error);
  return { status: 'fail', detail: `checker threw: ${message.split('\n')[0]}` };
}

function result(name: string, outcome: CheckOutcome, started: number): CheckResult {
  return {
    name,
    status: outcome.status,
    detail: outcome.detail.slice(0, 500),
    durationMs: Math.round((performance.now() - started) * 100) / 100,
    at: new Date().toISOString(),
  };
}

/**
 * Runs one checker; a waiting one with a deadline. Resolves with a result in every case: a checker that throws,
 * returns garbage or outlives its deadline is a failing check (its signal is aborted so it can
 * let go of what it holds). The caller logs changes of verdict (not every round: no log spam).
 */
export async function runCheck<C extends HolderCheckContext>(
  checker: Checker<C>,
  makeContext: (signal: AbortSignal) => C,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<CheckResult> {
  const started = performance.now();
  if (checker.checkNow) {
    // Nothing to wait on, so nothing to time out: a check that never returned would be a stuck
    // event loop, which the heartbeat going stale reports.
    let outcome: CheckOutcome;
    try {
      outcome = outcomeOf(checker.checkNow(makeContext(options.signal)));
    } catch (error) {
      outcome = threw(error);
    }
    return result(checker.name, outcome, started);
  }
  const controller = new AbortController();
  const onStop = () => controller.abort();
  options.signal.addEventListener('abort', onStop, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.timeoutMs);
  });
  let outcome: CheckOutcome;
  let finished = false;
  try {
    // Promise.resolve().then() turns a synchronous throw into a rejection too.
    const answer = await Promise.race([Promise.resolve().then(() => checker.check(makeContext(controller.signal))), deadline]);
    finished = answer !== 'timeout';
    outcome = answer === 'timeout' ? { status: 'fail', detail: `check did not finish within ${options.timeoutMs} ms` } : outcomeOf(answer);
  } catch (error) {
    outcome = threw(error);
  } finally {
    clearTimeout(timer);
    // Only a checker cut short may still hold something; aborting a finished one would cost an
    // AbortError per check and round for nothing.
    if (!finished) controller.abort();
    options.signal.removeEventListener('abort', onStop);
  }
  return result(checker.name, outcome, started);
}
