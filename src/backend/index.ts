import { FleetboxError } from '../protocol/errors.js';
import { BACKENDS, type BackendKind } from '../store/backend-kinds.js';
import type { Backend, BackendSettings, BackendSetup } from './types.js';

/**
 * The backends, found by name: a backend is the folder `backend/<kind>/`, whose `index.ts`
 * exports `createBackend` and whose `setup.ts` exports `backendSetup`, plus its name in BACKENDS
 * (store/backend-kinds.ts). Loaded lazily: a process cluster never pays for the qemu code.
 */
function checked(kind: string): BackendKind {
  if (!(BACKENDS as readonly string[]).includes(kind)) {
    throw new FleetboxError('usage', `unknown backend ${JSON.stringify(kind)}; use one of ${BACKENDS.join(', ')}`);
  }
  return kind as BackendKind;
}

export async function loadBackend(kind: string, settings: BackendSettings = {}): Promise<Backend> {
  const module = (await import(`./${checked(kind)}/index.js`)) as { createBackend(settings: BackendSettings): Backend };
  return module.createBackend(settings);
}

export async function loadBackendSetup(kind: string): Promise<BackendSetup> {
  const module = (await import(`./${checked(kind)}/setup.js`)) as { backendSetup: BackendSetup };
  return module.backendSetup;
}
