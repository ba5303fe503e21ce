import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from './layout.js';
import type { HeartbeatFile } from '../protocol/health.js';

/**
 * Where a cluster's holder writes its heartbeat: one small file per holder (not per member), so
 * a fleet of 100 members costs one write per poll period, not 100 fsyncs on the event loop.
 */
export function heartbeatPath(store: Store, cluster: string): string {
  return join(store.clusterDir(cluster), 'health.json');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a heartbeat file without zod (this runs on every `fleetbox status`). Only the fields the
 * rollup relies on are checked; test/health checks that the holder's file passes the full
 * HeartbeatFileSchema, so the two cannot drift unnoticed. Missing or unreadable reads as undefined.
 */
export function readHeartbeat(store: Store, cluster: string): HeartbeatFile | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(heartbeatPath(store, cluster), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(raw) || raw.version !== 1 || typeof raw.heartbeat !== 'string') return undefined;
  const holder = raw.holder;
  if (!isObject(holder) || typeof holder.pid !== 'number' || typeof holder.startTime !== 'string') return undefined;
  if (typeof raw.staleAfterMs !== 'number' || !Array.isArray(raw.checks) || !isObject(raw.members)) return undefined;
  return raw as HeartbeatFile;
}
