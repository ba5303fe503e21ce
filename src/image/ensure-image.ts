import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { recordedHashes, sha256FileCached, sha256Text, type FileHasher } from './file-hash.js';
import { GUEST_INIT } from './guest-init.js';
import { reseedProgram } from './reseed-program.js';
import { buildExecServer, execServerDigest } from './exec-server.js';
import { findBinary } from '../host/binaries.js';
import { hostCommand } from './host-command.js';
import { ensureHostKey } from './host-key.js';
import { buildInitramfs } from './initramfs.js';
import { ensureKernel, type CachedKernel } from './kernel-package.js';
import { verifyImage, writeManifest, type ImageManifest } from './manifest.js';
import { sharedLibrariesOf, type SharedLibrary } from './shared-libraries.js';
import { ensureSshKey } from './ssh-key.js';
import { isStaticElf64 } from './static-binary.js';
import { extractVmlinux } from './vmlinux.js';

/** Bumped when the image layout changes in a way the inputs below do not capture. */
const IMAGE_FORMAT = '2';
export const IMAGE_NAME = 'guest';
export const KERNEL_FILE = 'vmlinux';
export const INITRD_FILE = 'initrd.cpio.lz4';

export interface GuestImage {
  dir: string;
  /** PVH-bootable ELF kernel for `-kernel`. */
  kernel: string;
  /** lz4 (legacy frame) newc initramfs for `-initrd`. */
  initrd: string;
  manifest: ImageManifest;
}

export interface EnsureImageOptions {
  onProgress?: (message: string) => void;
  /**
   * Trust a file's sha256 recorded by an earlier check while its inode, size, mtime and ctime are
   * unchanged, instead of hashing ~60 MB again (every `up`). Setup leaves it off and hashes all.
   */
  trustRecordedHashes?: boolean;
}

/** images/file-hashes.json: the sha256 of every file an image check read, with its identity. */
export function fileHashesPath(store: Store): string {
  return join(store.imagesDir, 'file-hashes.json');
}

interface Inputs {
  kernel: CachedKernel;
  busybox: string;
  dropbear: string;
  agent: string;
  /** iproute2's tc: netem shaping for `fault delay`, in guests whose root has none. */
  tc: string;
  /** What dropbear, the agent and tc load, each library once. */
  libraries: SharedLibrary[];
  applets: string[];
  authorizedKey: string;
  hostKey: string;
  /** input name → digest; the image hash is the hash of this. */
  digests: Record<string, string>;
}

async function digestOf(path: string, hashOf: FileHasher): Promise<string> {
  const digest = await hashOf(path);
  if (digest === undefined) throw new FleetboxError('missing_prerequisite', `${path} disappeared while building the image; run: fleetbox setup --yes`);
  return digest;
}

async function gatherInputs(store: Store, progress: (message: string) => void, hashOf: FileHasher): Promise<Inputs> {
  const kernel = await ensureKernel(store, progress, hashOf);
  const busybox = findBinary('busybox');
  if (!busybox || !isStaticElf64(busybox)) {
    throw new FleetboxError('missing_prerequisite', 'a static busybox (package busybox-static) is needed for the guest; run: fleetbox setup --yes');
  }
  const dropbear = findBinary('dropbear');
  if (!dropbear) throw new FleetboxError('missing_prerequisite', 'dropbear (package dropbear-bin) is needed for guest SSH; run: fleetbox setup --yes');
  const agent = findBinary('qemu-ga');
  if (!agent) throw new FleetboxError('missing_prerequisite', 'qemu-ga (package qemu-guest-agent) is needed for the guest agent; run: fleetbox setup --yes');
  const tc = findBinary('tc');
  if (!tc) throw new FleetboxError('missing_prerequisite', 'tc (package iproute2) is needed to shape guest traffic; run: fleetbox setup --yes');
  const libraries = uniqueLibraries([...(await sharedLibrariesOf(dropbear)), ...(await sharedLibrariesOf(agent)), ...(await sharedLibrariesOf(tc))]);
  const applets = (await hostCommand(busybox, ['--list'])).split('\n').filter(Boolean);
  const key = await ensureSshKey(store);
  const hostKey = await ensureHostKey(store);
  const digests: Record<string, string> = {
    format: IMAGE_FORMAT,
    kernel: `${kernel.package} ${kernel.version}`,
    kernelFiles: sha256Text(JSON.stringify(kernel.files)),
    init: sha256Text(GUEST_INIT),
    reseed: sha256Text(reseedProgram().toString('hex')),
    execServer: execServerDigest(),
    busybox: await digestOf(busybox, hashOf),
    dropbear: await digestOf(dropbear, hashOf),
    agent: await digestOf(agent, hashOf),
    tc: await digestOf(tc, hashOf),
    authorizedKey: sha256Text(key.publicKeyText),
    hostKey: await digestOf(hostKey, hashOf),
  };
  for (const lib of libraries) digests[`lib:${lib.guestPath}`] = await digestOf(lib.hostPath, hashOf);
  return { kernel, busybox, dropbear, agent, tc, libraries, applets, authorizedKey: key.publicKeyText, hostKey, digests };
}

function uniqueLibraries(libraries: SharedLibrary[]): SharedLibrary[] {
  return [...new Map(libraries.map((lib) => [lib.guestPath, lib])).values()];
}

function imageHash(digests: Record<string, string>): string {
  const sorted = Object.keys(digests)
    .sort()
    .map((k) => `${k}=${digests[k]}`);
  return sha256Text(sorted.join('\n')).slice(0, 16);
}

async function build(store: Store, inputs: Inputs, hash: string, dir: string): Promise<GuestImage> {
  const scratch = mkdtempSync(join(store.imagesDir, '.build-'));
  try {
    await extractVmlinux(inputs.kernel.vmlinuz, join(scratch, KERNEL_FILE));
    const execServer = join(scratch, 'fleetbox-exec');
    await buildExecServer(execServer);
    await buildInitramfs(
      join(scratch, INITRD_FILE),
      {
        init: GUEST_INIT,
        busybox: inputs.busybox,
        busyboxApplets: inputs.applets,
        dropbear: inputs.dropbear,
        agent: inputs.agent,
        tc: inputs.tc,
        execServer,
        libraries: inputs.libraries,
        modulesDir: inputs.kernel.modulesDir,
        authorizedKey: inputs.authorizedKey,
        hostKey: inputs.hostKey,
      },
      store.imagesDir,
    );
    rmSync(execServer);
    const manifest: ImageManifest = {
      name: IMAGE_NAME,
      hash,
      kernel: { package: inputs.kernel.package, version: inputs.kernel.version, release: inputs.kernel.release },
      inputs: inputs.digests,
      files: {
        [KERNEL_FILE]: await digestOf(join(scratch, KERNEL_FILE), sha256FileCached),
        [INITRD_FILE]: await digestOf(join(scratch, INITRD_FILE), sha256FileCached),
      },
      createdAt: new Date().toISOString(),
    };
    writeManifest(scratch, manifest);
    // Readers only ever see a complete image directory: it appears by rename.
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(scratch, dir);
    } catch (error) {
      const theirs = await verifyImage(dir, hash);
      if (theirs.manifest) return describe(dir, theirs.manifest); // a concurrent build won
      throw new FleetboxError('io', `cannot store the image in ${dir}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
    }
    return describe(dir, manifest);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function describe(dir: string, manifest: ImageManifest): GuestImage {
  return { dir, kernel: join(dir, KERNEL_FILE), initrd: join(dir, INITRD_FILE), manifest };
}

/** Old builds are dead weight (~55 MB each); running VMs already loaded theirs, so removing is safe. */
function removeOtherImages(store: Store, keep: string): void {
  for (const entry of readdirSync(store.imagesDir)) {
    if (entry.startsWith(`${IMAGE_NAME}-`) && join(store.imagesDir, entry) !== keep) {
      rmSync(join(store.imagesDir, entry), { recursive: true, force: true });
    }
  }
}

async function ensureImageNow(store: Store, progress: (message: string) => void, trustRecorded: boolean): Promise<GuestImage> {
  if (!existsSync(store.imagesDir)) mkdirSync(store.imagesDir, { recursive: true, mode: 0o700 });
  const hashOf = trustRecorded ? recordedHashes(fileHashesPath(store)) : sha256FileCached;
  const inputs = await gatherInputs(store, progress, hashOf);
  const hash = imageHash(inputs.digests);
  const dir = join(store.imagesDir, `${IMAGE_NAME}-${hash}`);
  const verdict = await verifyImage(dir, hash, hashOf);
  if (verdict.manifest) return describe(dir, verdict.manifest);
  progress(`building guest image ${IMAGE_NAME}-${hash} (${verdict.problem})`);
  const image = await build(store, inputs, hash, dir);
  removeOtherImages(store, dir);
  progress(`guest image ${IMAGE_NAME}-${hash} ready`);
  return image;
}

/** One build per store at a time in this process: members that prepare together share it. */
const inFlight = new Map<string, Promise<GuestImage>>();

/**
 * The guest image (kernel + initramfs) for this installation: verified against its manifest's
 * sha256 sums before every use, rebuilt when an input changed (kernel package, init text,
 * busybox, dropbear, qemu-ga and their libraries, keys) or a file is damaged. Downloads the kernel package
 * on first use.
 */
export function ensureImage(store: Store, options: EnsureImageOptions = {}): Promise<GuestImage> {
  const progress = options.onProgress ?? (() => {});
  let pending = inFlight.get(store.home);
  if (!pending) {
    pending = ensureImageNow(store, progress, options.trustRecordedHashes ?? false).finally(() => inFlight.delete(store.home));
    inFlight.set(store.home, pending);
  }
  return pending;
}
