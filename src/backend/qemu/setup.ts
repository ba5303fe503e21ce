import { accessSync, constants } from 'node:fs';
import { findBinary } from '../../host/binaries.js';
import { ensureImage } from '../../image/ensure-image.js';
import { staticLibc } from '../../image/exec-server.js';
import { newestCachedKernel } from '../../image/kernel-package.js';
import { ensureSshKey } from '../../image/ssh-key.js';
import { isStaticElf64 } from '../../image/static-binary.js';
import type { Store } from '../../store/layout.js';
import type { BackendSetup, Prerequisite } from '../types.js';
import { findVirtiofsd } from './file-server.js';
import { chooseAccelerator, readKvmVerdict } from './kvm-probe.js';
import { prepareDefaultTemplate } from './template.js';

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
  { name: 'gcc', binaries: ['gcc'], package: 'gcc', why: "builds the guest's exec server, a static program; libc6-dev too" },
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

function staticLibcCheck(): Prerequisite {
  const path = staticLibc();
  return {
    name: 'libc6-dev',
    ok: path !== undefined,
    required: true,
    detail: path ? `${path} found (the guest's exec server is linked with it)` : "no static C library (the guest's exec server is linked with it)",
    fix: path ? null : SETUP,
    package: 'libc6-dev',
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
    downloadsWithApt: true,
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

const QEMU_CANDIDATES = ['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** What the qemu backend needs and prepares: host tools, the guest image, the KVM verdict, the default template. */
export const backendSetup: BackendSetup = {
  cannotRun() {
    if (process.platform !== 'linux') return `fleetbox VMs need Linux, this is ${process.platform}`;
    return QEMU_CANDIDATES.some(executable) ? undefined : "qemu-system-x86_64 is not installed; run 'npx fleetbox setup --yes'";
  },

  async check(store) {
    if (process.platform !== 'linux') {
      return [{ name: 'linux', ok: false, required: true, detail: `fleetbox VMs need Linux, this is ${process.platform}`, fix: 'use a Linux host' }];
    }
    return [rootCheck(), ...TOOLS.map(toolCheck), virtiofsdCheck(), busyboxCheck(), staticLibcCheck(), await kernelCheck(store), kvmCheck(store)];
  },

  async prepare(store, settings, progress) {
    await ensureSshKey(store);
    const image = await ensureImage(store, { onProgress: progress });
    const verdict = await chooseAccelerator(store, image, progress, settings.accel);
    progress(`accelerator: ${verdict.accel} (${verdict.reason})`);
    await prepareDefaultTemplate(store, image, verdict.accel, progress);
  },
};
