/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Asks `poll` every `intervalMs` until it answers something other than undefined, and resolves
 * with that answer; resolves undefined once `timeoutMs` has passed without one. `poll` is asked
 * at least once, and once more after the deadline has passed (so a slow last sleep never loses
 * an answer that came in time). A `poll` that throws ends the wait with its error.
 */
export async function pollUntil<T>(poll: () => T | undefined | Promise<T | undefined>, timeoutMs: number, intervalMs = 20): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await poll();
    if (answer !== undefined) return answer;
    if (Date.now() > deadline) return undefined;
    await sleep(intervalMs);
  }
}
