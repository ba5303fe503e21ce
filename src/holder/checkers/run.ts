import type { CheckResult } from '../../protocol/health.js';
import { CHECK_STATUSES } from '../../protocol/health-levels.js';
import type { Checker, CheckOutcome, HolderCheckContext } from './types.js';

function isOutcome(value: unknown): value is CheckOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const { status, detail } = value as { status?: unknown; detail?: unknown };
  return (CHECK_STATUSES as readonly unknown[]).includes(status) && typeof detail === 'string';
}

/**
 * Runs one checker with a deadline. Resolves with a result in every case: a checker that throws,
 * returns garbage or outlives its deadline is a failing check (its signal is aborted so it can
 * let go of what it holds). The caller logs changes of verdict (not every round: no log spam).
 */
export async function runCheck<C extends HolderCheckContext>(
  checker: Checker<C>,
  makeContext: (signal: AbortSignal) => C,
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<CheckResult> {
  const started = performance.now();
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
    if (answer === 'timeout') {
      outcome = { status: 'fail', detail: `check did not finish within ${options.timeoutMs} ms` };
    } else if (!isOutcome(answer)) {
      outcome = { status: 'fail', detail: 'checker returned no {status, detail}' };
    } else {
      outcome = answer;
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    outcome = { status: 'fail', detail: `checker threw: ${message.split('\n')[0]}` };
  } finally {
    clearTimeout(timer);
    // Only a checker cut short may still hold something; aborting a finished one would cost an
    // AbortError per check and round for nothing.
    if (!finished) controller.abort();
    options.signal.removeEventListener('abort', onStop);
  }
  return {
    name: checker.name,
    status: outcome.status,
    detail: outcome.detail.slice(0, 500),
    durationMs: Math.round((performance.now() - started) * 100) / 100,
    at: new Date().toISOString(),
  };
}
