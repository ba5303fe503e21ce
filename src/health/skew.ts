/** One request/response exchange with a clock reading from the other side, NTP style. */
export interface ClockSample {
  /** Our wall clock (ms since the epoch) when the request was sent. */
  sentAt: number;
  /** Our wall clock when the response arrived. */
  receivedAt: number;
  /** The other side's wall clock while it answered. */
  remoteAt: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * How far the other clock is ahead of ours (negative: behind), assuming the answer was stamped
 * half-way through the round trip; the error is at most half the round trip. The median of a
 * few samples throws out one that was delayed on the way. Undefined without samples.
 */
export function estimateSkew(samples: ClockSample[]): { offsetMs: number; rttMs: number } | undefined {
  const usable = samples.filter((s) => Number.isFinite(s.remoteAt) && s.receivedAt >= s.sentAt);
  if (usable.length === 0) return undefined;
  return {
    offsetMs: median(usable.map((s) => s.remoteAt - (s.sentAt + s.receivedAt) / 2)),
    rttMs: median(usable.map((s) => s.receivedAt - s.sentAt)),
  };
}
