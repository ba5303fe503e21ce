import { DEFAULT_BACKEND } from './store/backend-kinds.js';
import { Store } from './store/layout.js';

/**
 * vitest `globalSetup` helper: prepares the guest image (kernel download, initramfs build), the
 * template members are cloned from and the SSH key once per test run, before any worker starts, so no test pays for it and no two
 * workers build it at once. Skips quietly on a machine that cannot boot VMs (the fixture then
 * skips its tests, saying why).
 *
 *   // vitest.config.ts
 *   export default defineConfig({ test: { globalSetup: ['fleetbox/vitest/global-setup'] } });
 */
export default async function setup(): Promise<void> {
  const { cannotBoot } = await import('./vitest.js');
  const reason = cannotBoot(DEFAULT_BACKEND);
  if (reason) {
    process.stderr.write(`fleetbox: not preparing the guest image: ${reason}\n`);
    return;
  }
  const { ensureImage } = await import('./image/ensure-image.js');
  const { ensureSshKey } = await import('./image/ssh-key.js');
  const store = new Store().ensure();
  const started = Date.now();
  await ensureSshKey(store);
  const say = (message: string) => process.stderr.write(`fleetbox: ${message}\n`);
  const image = await ensureImage(store, { onProgress: say });
  const { chooseAccelerator } = await import('./backend/qemu/kvm-probe.js');
  const { prepareDefaultTemplate } = await import('./backend/qemu/template.js');
  await prepareDefaultTemplate(store, image, (await chooseAccelerator(store, image, say)).accel, say);
  say(`guest image and template ready (${Date.now() - started} ms)`);
}
