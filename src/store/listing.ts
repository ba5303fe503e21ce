import { existsSync, readdirSync } from 'node:fs';
import type { Store } from './layout.js';
import { isValidName } from './names.js';

/*
 * Listing the store is kept free of zod: `fleetbox status` and `ls` walk it on every call, and
 * loading zod would cost them a third of their start-up time.
 */

export interface MemberRef {
  cluster: string;
  name: string;
}


function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.isSymbolicLink() && isValidName(entry.name))
      .map((entry) => entry.name)
      .sort();
  } catch {
    return [];
  }
}

/** Every cluster with a directory in the store; entries that are not valid names are ignored. */
export function listClusters(store: Store): string[] {
  return subdirs(store.clustersDir);
}

/** Every member known on disk (it has a config.json), sorted by cluster then name. */
export function listMembers(store: Store, cluster?: string): MemberRef[] {
  const clusters = cluster === undefined ? listClusters(store) : [cluster];
  return clusters.flatMap((c) =>
    subdirs(store.clusterDir(c))
      .filter((m) => existsSync(store.configPath(c, m)))
      .map((name) => ({ cluster: c, name })),
  );
}

