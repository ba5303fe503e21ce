import { test as base } from 'vitest';
import { startCluster, type Cluster, type StartClusterOptions } from './lib/cluster.js';
import { DEFAULT_BACKEND, type BackendKind } from './store/backend-kinds.js';

export interface FleetboxTestOptions extends Omit<StartClusterOptions, 'name' | 'unique'> {
  /** Base of the cluster name; default: derived from the test's name. */
  name?: string;
}

/** A cluster name from a test name: lowercase, dashes, short; a unique suffix is added later. */
export function clusterNameFor(testName: string): string {
  const slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return slug || 'test';
}

/** Why this machine cannot boot members of `backend` (default: a VM), or undefined when it can. */
export async function cannotBoot(backend: BackendKind = DEFAULT_BACKEND): Promise<string | undefined> {
  const { loadBackendSetup } = await import('./backend/index.js');
  return (await loadBackendSetup(backend)).cannotRun();
}

/**
 * A vitest `test` with a `cluster` fixture: one fresh cluster per test that uses it, named after
 * the test plus a unique suffix (parallel workers never collide), bound to the worker process,
 * destroyed after the test whatever happened. Skips, saying why, on a machine that cannot boot.
 *
 *   const it = fleetboxTest({ members: 2 });
 *   it('talks', async ({ cluster }) => { ... });
 */
export function fleetboxTest(options: FleetboxTestOptions = {}) {
  return base.extend<{ cluster: Cluster }>({
    cluster: async ({ task, skip }, use) => {
      const reason = await cannotBoot(options.backend);
      if (reason) {
        process.stderr.write(`fleetbox: skipping "${task.name}": ${reason}\n`);
        skip(reason);
        return;
      }
      const cluster = await startCluster({ ...options, name: clusterNameFor(options.name ?? task.name), unique: true });
      try {
        await use(cluster);
      } finally {
        await cluster.destroy();
      }
    },
  });
}

export { startCluster, type Cluster };
