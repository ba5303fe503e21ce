/**
 * The header a dashboard stamps on every response with its wall clock (ms since the epoch);
 * `status --hosts` reads it to estimate clock skew. Shared so the two ends cannot drift.
 */
export const TIME_HEADER = 'x-fleetbox-time';
