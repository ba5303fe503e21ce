import type { BackendSetup } from '../types.js';

/** Plain processes need nothing beyond what fleetbox itself runs on, and prepare nothing. */
export const backendSetup: BackendSetup = {
  cannotRun: () => undefined,
  check: () => Promise.resolve([]),
  prepare: () => Promise.resolve(),
};
