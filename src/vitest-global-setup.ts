import { loadBackendSetup } from './backend/index.js';
import { holderSettingsFromEnv } from './protocol/holder-options.js';
import { DEFAULT_BACKEND } from './store/backend-kinds.js';
import { Store } from './store/layout.js';

/**
 * vitest `globalSetup` helper: lets the default backend prepare once per test run, before any
 * worker starts (for VMs: the guest image with its kernel download and initramfs build, the SSH
 * key, the KVM verdict and the template members are cloned from), so no test pays for it and no
 * two workers build it at once. Skips quietly on a machine that cannot boot VMs (the fixture then
 * skips its tests, saying why).
 *
 *   // vitest.config.ts
 *   export default defineConfig({ test: { globalSetup: ['fleetbox/vitest/global-setup'] } });
 */
export default async function setup(): Promise<void> {
  const backend = await loadBackendSetup(DEFAULT_BACKEND);
  const reason = backend.cannotRun();
  if (reason) {
    process.stderr.write(`fleetbox: not preparing the guest image: ${reason}\n`);
    return;
  }
  const started = Date.now();
  const say = (message: string) => process.stderr.write(`fleetbox: ${message}\n`);
  await backend.prepare(new Store().ensure(), holderSettingsFromEnv(process.env), say);
  say(`guest image and template ready (${Date.now() - started} ms)`);
}
