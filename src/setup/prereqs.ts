import { accessSync, constants } from 'node:fs';
import { findVirtiofsd } from '../backend/qemu/file-server.js';
import { chooseAccelerator, readKvmVerdict } from '../backend/qemu/kvm-probe.js';
import { prepareDefaultTemplate } from '../backend/qemu/template.js';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { ensureImage } from '../image/ensure-image.js';
import { findBinary } from '../host/binaries.js';
import { hostCommand } from '../image/host-command.js';
import { newestCachedKernel } from '../image/kernel-package.js';
import { ensureSshKey } from '../image/ssh-key.js';
import { isStaticElf64 } from '../image/static-binary.js';

/** One line of `fleetbox doctor`. */
export interface Prerequisite {
  name: string;
  ok: boolean;
  /** false: fleetbox works without it, only slower or with less (e.g. KVM). */
  required: boolean;
  detail: string;
  /** What to run to fix it; null when ok or when nothing can be run. */
  fix: string | null;
  /** Debian package that provides it, when installing one fixes it. */
  package?: string;
}

const SETUP = 'run: fleetbox setup --yes';

/** Host tools, each with the Debian package that provides it. */
const TOOLS: readonly { name: string; binaries: readonly string[]; package: string; why: string }[] = [
  { name: 'qemu', binaries: ['qemu-system-x86_64'], package: 'qemu-system-x86', why: 'runs the virtual machines' },
  { name: 'cpio', binaries: ['cpio'], package: 'cpio', why: 'packs the guest initramfs' },
  { name: 'lz4', binaries: ['lz4'], package: 'lz4', why: 'unpacks the guest kernel' },
  { name: 'dropbear', binaries: ['dropbear', 'dropbearkey'], package: 'dropbear-bin', why: 'SSH server inside guests' },
  { name: 'qemu-guest-agent', binaries: ['qemu-ga'], package: 'qemu-guest-agent', why: 'the agent inside guests: exec, copy, readiness, health' },
  { name: 'openssh-client', binaries: ['ssh', 'ssh-keygen'], package: 'openssh-client', why: 'reaches guests over SSH' },
  { name: 'iproute2', binaries: ['ip', 'tc'], package: 'iproute2', why: 'network namespaces, bridges and taps; tc shapes guest traffic (fault delay)' },
  { name: 'nftables', binaries: ['nft'], package: 'nftables', why: 'network faults: partitions and isolation on a cluster\'s bridge' },
  { name: 'dnsmasq', binaries: ['dnsmasq'], package: 'dnsmasq-base', why: 'members resolve each other by name' },
  { name: 'util-linux', binaries: ['setpriv', 'unshare'], package: 'util-linux', why: 'VMs die with their holder (pdeathsig); private mounts for file servers' },
  { name: 'mmdebstrap', binaries: ['mmdebstrap'], package: 'mmdebstrap', why: 'builds guest images from Debian packages (fleetbox image build)' },
];

/** qemu's virtiofsd is not on PATH (Debian keeps it in /usr/lib/qemu). */
function virtiofsdCheck(): Prerequisite {
  const path = findVirtiofsd();
  return {
    name: 'virtiofsd',
    ok: path !== undefined,
    required: true,
    detail: path ? `${path} found (serves --rootfs host and --share to guests)` : 'virtiofsd missing (serves --rootfs host and --share to guests)',
    fix: path ? null : SETUP,
    package: 'qemu-system-common',
  };
}

function toolCheck(tool: (typeof TOOLS)[number]): Prerequisite {
  const missing = tool.binaries.filter((b) => !findBinary(b));
  return {
    name: tool.name,
    ok: missing.length === 0,
    required: true,
    detail: missing.length === 0 ? `${tool.binaries.join(', ')} found (${tool.why})` : `${missing.join(', ')} missing (${tool.why})`,
    fix: missing.length === 0 ? null : SETUP,
    package: tool.package,
  };
}

function busyboxCheck(): Prerequisite {
  const path = findBinary('busybox');
  const ok = path !== undefined && isStaticElf64(path);
  return {
    name: 'busybox-static',
    ok,
    required: true,
    detail: ok ? `${path} is static (guest userland)` : path ? `${path} is not statically linked` : 'busybox missing (guest userland)',
    fix: ok ? null : SETUP,
    package: 'busybox-static',
  };
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

function rootCheck(): Prerequisite {
  const ok = process.getuid?.() === 0;
  return {
    name: 'root',
    ok,
    required: true,
    detail: ok ? 'running as root (network namespaces and taps need CAP_NET_ADMIN)' : 'not root: qemu clusters need CAP_NET_ADMIN for their network namespace',
    fix: ok ? null : 'run fleetbox as root (e.g. sudo -E fleetbox …)',
  };
}

async function kernelCheck(store: Store): Promise<Prerequisite> {
  const kernel = await newestCachedKernel(store);
  return {
    name: 'guest kernel',
    ok: kernel !== undefined,
    required: true,
    detail: kernel ? `${kernel.package} ${kernel.version} cached and intact` : 'no Debian cloud kernel cached yet (downloaded on first boot)',
    fix: kernel ? null : SETUP,
  };
}

function kvmCheck(store: Store): Prerequisite {
  let device = true;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    device = false;
  }
  if (!device) {
    return { name: 'kvm', ok: false, required: false, detail: 'no usable /dev/kvm: VMs run under TCG software emulation (~1.8 s a boot)', fix: null };
  }
  const verdict = readKvmVerdict(store);
  if (!verdict) {
    return { name: 'kvm', ok: false, required: false, detail: '/dev/kvm opens, but no guest was booted with it yet (setup or the first boot checks)', fix: SETUP };
  }
  return {
    name: 'kvm',
    ok: verdict.accel === 'kvm',
    required: false,
    detail: verdict.accel === 'kvm' ? `KVM runs guests: ${verdict.reason}` : `KVM unusable, using TCG: ${verdict.reason}`,
    fix: null,
  };
}

/**
 * Everything the qemu backend needs, one entry each, for `fleetbox doctor`. Looks only: it
 * never downloads, builds or boots anything (the KVM line reports the cached probe verdict).
 */
export async function checkPrerequisites(store: Store): Promise<Prerequisite[]> {
  if (process.platform !== 'linux') {
    return [{ name: 'linux', ok: false, required: true, detail: `fleetbox VMs need Linux, this is ${process.platform}`, fix: 'use a Linux host' }];
  }
  return [aptCheck(), rootCheck(), ...TOOLS.map(toolCheck), virtiofsdCheck(), busyboxCheck(), await kernelCheck(store), kvmCheck(store)];
}

export interface InstallOptions {
  onProgress?: (message: string) => void;
}

/**
 * `fleetbox setup --yes`: installs the missing Debian packages (apt-get update + install, needs
 * root), then downloads the guest kernel, builds the image, makes the installation's SSH key and
 * checks KVM once. Returns the checks afterwards; throws only when a step could not run.
 */
export async function installPrerequisites(store: Store, options: InstallOptions = {}): Promise<Prerequisite[]> {
  const progress = options.onProgress ?? (() => {});
  const before = await checkPrerequisites(store);
  const linux = before.find((p) => p.name === 'linux');
  if (linux) throw new FleetboxError('missing_prerequisite', linux.detail);
  const apt = before.find((p) => p.name === 'apt');
  if (apt && !apt.ok) throw new FleetboxError('missing_prerequisite', `apt-get/dpkg are missing; ${apt.fix}`);
  const packages = before.filter((p) => !p.ok && p.package).map((p) => p.package as string);
  const kernelCached = before.find((p) => p.name === 'guest kernel')?.ok ?? false;
  const root = process.getuid?.() === 0;
  if (packages.length > 0 && !root) {
    throw new FleetboxError('missing_prerequisite', `installing ${packages.join(' ')} needs root; run: sudo fleetbox setup --yes`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } as Record<string, string>;
  if (root && (packages.length > 0 || !kernelCached)) {
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
  await ensureSshKey(store);
  const image = await ensureImage(store, { onProgress: progress });
  const verdict = await chooseAccelerator(store, image, progress);
  progress(`accelerator: ${verdict.accel} (${verdict.reason})`);
  await prepareDefaultTemplate(store, image, verdict.accel, progress);
  return checkPrerequisites(store);
}
