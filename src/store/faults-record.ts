import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { FaultSchema, type Fault } from '../protocol/schemas.js';
import { readJson, writeJsonAtomic } from './atomic.js';
import type { Store } from './layout.js';

/** clusters/<cluster>/faults.json: the faults in force, written before they are applied. */
export function faultsPath(store: Store, cluster: string): string {
  return join(store.clusterDir(cluster), 'faults.json');
}

const FaultsFileSchema = z.object({ cluster: z.string(), faults: z.array(FaultSchema) });

export function readFaults(store: Store, cluster: string): Fault[] {
  try {
    return readJson(faultsPath(store, cluster), FaultsFileSchema)?.faults ?? [];
  } catch {
    return [];
  }
}

export function writeFaults(store: Store, cluster: string, faults: Fault[]): void {
  if (faults.length === 0) rmSync(faultsPath(store, cluster), { force: true });
  else writeJsonAtomic(faultsPath(store, cluster), { cluster, faults });
}
