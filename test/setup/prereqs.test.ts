import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureImage } from '../../dist/image/ensure-image.js';
import { kernelCacheRoot } from '../../dist/image/kernel-package.js';
import { checkPrerequisites, installPrerequisites } from '../../dist/setup/prereqs.js';
import { Store } from '../../dist/store/layout.js';
import { SHARED_HOME, cannotBootVms, reportSkip } from '../qemu/harness.js';

let store: Store | undefined;
afterEach(() => {
  if (store) rmSync(store.home, { recursive: true, force: true });
  store = undefined;
});

describe('checkPrerequisites (fleetbox doctor)', () => {
  it('lists every prerequisite with name, ok, detail, and a fix when a required one is missing', async () => {
    store = new Store(mkdtempSync('/tmp/fbx-p-')).ensure();
    const checks = await checkPrerequisites(store);
    expect(checks.length).toBeGreaterThan(5);
    for (const check of checks) {
      expect(check.name).toBeTruthy();
      expect(check.detail).toBeTruthy();
      if (!check.ok && check.required) expect(check.fix).toBeTruthy();
      if (check.ok) expect(check.fix).toBeNull();
    }
    expect(checks.map((c) => c.name)).toEqual(expect.arrayContaining(['qemu', 'busybox-static', 'dropbear', 'iproute2', 'guest kernel', 'kvm']));
    // A fresh store has no kernel yet, and doctor never downloads one.
    expect(checks.find((c) => c.name === 'guest kernel')).toMatchObject({ ok: false, fix: 'run: fleetbox setup --yes' });
  });
});

const skip = reportSkip('installPrerequisites', cannotBootVms());

describe.skipIf(skip)('installPrerequisites (fleetbox setup --yes)', () => {
  it('on a host with every package, builds the image, probes KVM once and reports all required checks ok', async () => {
    // Seeded with the shared kernel download: nothing is missing, so no apt-get runs at all.
    const shared = new Store(SHARED_HOME).ensure();
    await ensureImage(shared);
    store = new Store(mkdtempSync('/tmp/fbx-p-')).ensure();
    cpSync(kernelCacheRoot(shared), kernelCacheRoot(store), { recursive: true });
    const messages: string[] = [];
    const checks = await installPrerequisites(store, { onProgress: (m) => messages.push(m) });
    expect(checks.filter((c) => c.required && !c.ok)).toEqual([]);
    expect(messages.some((m) => m.startsWith('apt-get'))).toBe(false);
    expect(messages.some((m) => m.startsWith('accelerator: '))).toBe(true);
    const kvm = checks.find((c) => c.name === 'kvm');
    expect(kvm?.required).toBe(false);
    expect(kvm?.detail).not.toMatch(/not booted|no guest was booted/);
  }, 120_000);
});
