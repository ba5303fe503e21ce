/**
 * Bound mode's second line of defence: the acked control connection is the primary owner
 * signal, but if it is somehow still open (or never got acked) a change of our parent PID means
 * the owner died and we were re-parented.
 */
export function watchParent(parentPid: number, periodMs: number, onGone: () => void): () => void {
  if (process.ppid !== parentPid) {
    queueMicrotask(onGone);
    return () => {};
  }
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) {
      clearInterval(timer);
      onGone();
    }
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
