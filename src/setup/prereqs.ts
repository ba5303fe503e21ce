import { hostCommand } from '../image/host-command.js';
import { loadBackendSetup } from '../backend/index.js';
import type { BackendSetup, Prerequisite } from '../backend/types.js';
import { FleetboxError } from '../protocol/errors.js';
import { holderSettingsFromEnv } from '../protocol/holder-options.js';
import { BACKENDS } from '../store/backend-kinds.js';
import type { Store } from '../store/layout.js';
import { findBinary } from '../host/binaries.js';

export type { Prerequisite };

function backendSetups(): Promise<BackendSetup[]> {
  return Promise.all(BACKENDS.map((kind) => loadBackendSetup(kind)));
}

function aptCheck(): Prerequisite {
  const ok = findBinary('apt-get') !== undefined && findBinary('dpkg') !== undefined;
  return {
    name: 'apt',
    ok,
    required: true,
    detail: ok ? 'apt-get and dpkg found (packages and the guest kernel come from Debian)' : 'apt-get/dpkg missing',
    fix: ok ? null : 'use a Debian or Ubuntu host: fleetbox installs its tools and guest kernel with apt',
  };
}

/**
 * Everything the backends need, one entry each (the first of a name wins), for `fleetbox
 * doctor`. Looks only: it never downloads, builds or boots anything.
 */
export async function checkPrerequisites(store: Store): Promise<Prerequisite[]> {
  const lines = [aptCheck(), ...(await Promise.all((await backendSetups()).map((setup) => setup.check(store)))).flat()];
  const linux = lines.find((line) => line.name === 'linux');
  if (linux) return [linux];
  return lines.filter((line, at) => lines.findIndex((other) => other.name === line.name) === at);
}

export interface InstallOptions {
  onProgress?: (message: string) => void;
}

/**
 * `fleetbox setup --yes`: installs the missing Debian packages (apt-get update + install, needs
 * root), then lets each backend prepare (qemu: downloads the guest kernel, builds the image,
 * makes the installation's SSH key, checks KVM once and builds the default template). Returns
 * the checks afterwards; throws only when a step could not run.
 */
export async function installPrerequisites(store: Store, options: InstallOptions = {}): Promise<Prerequisite[]> {
  const progress = options.onProgress ?? (() => {});
  const before = await checkPrerequisites(store);
  const linux = before.find((p) => p.name === 'linux');
  if (linux) throw new FleetboxError('missing_prerequisite', linux.detail);
  const apt = before.find((p) => p.name === 'apt');
  if (apt && !apt.ok) throw new FleetboxError('missing_prerequisite', `apt-get/dpkg are missing; ${apt.fix}`);
  const packages = before.filter((p) => !p.ok && p.package).map((p) => p.package as string);
  const downloads = before.some((p) => !p.ok && p.downloadsWithApt === true);
  const root = process.getuid?.() === 0;
  if (packages.length > 0 && !root) {
    throw new FleetboxError('missing_prerequisite', `installing ${packages.join(' ')} needs root; run: sudo fleetbox setup --yes`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } as Record<string, string>;
  if (root && (packages.length > 0 || downloads)) {
    progress('apt-get update');
    await hostCommand('apt-get', ['update', '-q'], { env, timeoutMs: 600_000, failCode: 'missing_prerequisite', hint: 'check network access to the Debian mirror' });
  }
  if (packages.length > 0) {
    progress(`apt-get install ${packages.join(' ')}`);
    await hostCommand('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
      env,
      timeoutMs: 1_200_000,
      failCode: 'missing_prerequisite',
      hint: `install them by hand: apt-get install ${packages.join(' ')}`,
    });
  }
  store.ensure();
  const settings = holderSettingsFromEnv(process.env);
  for (const setup of await backendSetups()) await setup.prepare(store, settings, progress);
  return checkPrerequisites(store);
}
