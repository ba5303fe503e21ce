import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { FleetboxError, isFleetboxError } from '../protocol/errors.js';
import { readJson, writeJsonAtomic } from '../store/atomic.js';
import type { Store } from '../store/layout.js';
import { sha256FileCached, type FileHasher } from './file-hash.js';
import { ALL_GUEST_MODULES, FS_MODULES, GUEST_MODULES } from './guest-init.js';

/** What a guest cannot boot without; the shaping modules (fault delay) are a bonus offline. */
const BOOT_MODULES = [...GUEST_MODULES, ...FS_MODULES];
import { hostCommand } from './host-command.js';

/** The meta package that always depends on the current Debian cloud kernel. */
export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';

const KernelRecordSchema = z.object({
  package: z.string(),
  version: z.string(),
  /** uname -r of the kernel, e.g. 6.1.0-56-cloud-amd64. */
  release: z.string(),
  /** file name (vmlinuz, modules/<name>.ko) → sha256. */
  files: z.record(z.string(), z.string()),
});
export type KernelRecord = z.infer<typeof KernelRecordSchema>;

export interface CachedKernel extends KernelRecord {
  dir: string;
  vmlinuz: string;
  modulesDir: string;
}

export function kernelCacheRoot(store: Store): string {
  return join(store.imagesDir, 'kernels');
}

function safeSegment(text: string): string {
  return text.replace(/[^A-Za-z0-9.+_-]/g, '_');
}

const ResolvedSchema = z.object({ listsStamp: z.string(), package: z.string(), version: z.string() });

/** Changes whenever `apt-get update` replaced a list file (it renames them into this directory). */
function aptListsStamp(): string | undefined {
  try {
    const s = statSync(APT_LISTS);
    return `${s.ino}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

const APT_LISTS = '/var/lib/apt/lists';

/**
 * The concrete kernel package and version, remembered until apt's lists change: apt-cache takes
 * about a second per call on a small machine, far too slow to ask on every member's prepare.
 */
export async function resolveKernelPackage(store: Store): Promise<{ package: string; version: string }> {
  const memo = join(kernelCacheRoot(store), 'resolved.json');
  const stamp = aptListsStamp();
  let remembered: z.infer<typeof ResolvedSchema> | undefined;
  try {
    remembered = readJson(memo, ResolvedSchema);
  } catch {
    remembered = undefined;
  }
  if (remembered && stamp !== undefined && remembered.listsStamp === stamp) {
    return { package: remembered.package, version: remembered.version };
  }
  const resolved = await askApt();
  if (stamp !== undefined) {
    mkdirSync(kernelCacheRoot(store), { recursive: true, mode: 0o700 });
    writeJsonAtomic(memo, { listsStamp: stamp, ...resolved });
  }
  return resolved;
}

/** Resolves the meta package offline from apt's lists with apt-cache. */
async function askApt(): Promise<{ package: string; version: string }> {
  const hint = 'run: fleetbox setup --yes (it runs apt-get update)';
  const depends = await hostCommand('apt-cache', ['depends', KERNEL_META_PACKAGE], { failCode: 'missing_prerequisite', hint });
  const pkg = /Depends:\s+(linux-image-\S+-cloud-amd64)\b/.exec(depends)?.[1];
  if (!pkg) {
    throw new FleetboxError('missing_prerequisite', `apt does not know ${KERNEL_META_PACKAGE}'s kernel; ${hint}`);
  }
  const show = await hostCommand('apt-cache', ['show', '--no-all-versions', pkg], { failCode: 'missing_prerequisite', hint });
  const version = /^Version:\s*(\S+)/m.exec(show)?.[1];
  if (!version) throw new FleetboxError('missing_prerequisite', `apt has no version of ${pkg}; ${hint}`);
  return { package: pkg, version };
}

function kernelDir(store: Store, pkg: string, version: string): string {
  return join(kernelCacheRoot(store), `${safeSegment(pkg)}_${safeSegment(version)}`);
}

function describe(dir: string, record: KernelRecord): CachedKernel {
  return { ...record, dir, vmlinuz: join(dir, 'vmlinuz'), modulesDir: join(dir, 'modules') };
}

/** A cached kernel whose every file still has its recorded sha256, else undefined. */
export async function verifiedKernel(
  dir: string,
  hashOf: FileHasher = sha256FileCached,
  required: readonly { name: string }[] = ALL_GUEST_MODULES,
): Promise<CachedKernel | undefined> {
  let record: KernelRecord | undefined;
  try {
    record = readJson(join(dir, 'kernel.json'), KernelRecordSchema);
  } catch {
    return undefined;
  }
  if (!record) return undefined;
  // An entry cached before a module joined the list lacks it: download the package again.
  if (required.some((m) => record.files[`modules/${m.name}.ko`] === undefined)) return undefined;
  for (const [file, sum] of Object.entries(record.files)) {
    if ((await hashOf(join(dir, file))) !== sum) return undefined;
  }
  return describe(dir, record);
}

/** The newest verified kernel in the cache, for hosts whose apt lists are gone. */
export async function newestCachedKernel(store: Store, hashOf: FileHasher = sha256FileCached): Promise<CachedKernel | undefined> {
  const root = kernelCacheRoot(store);
  if (!existsSync(root)) return undefined;
  const dirs = readdirSync(root)
    .filter((d) => !d.startsWith('.') && d !== 'resolved.json')
    .sort()
    .reverse();
  for (const dir of dirs) {
    // Offline, a cache from before the shaping modules still boots guests (without fault delay).
    const kernel = await verifiedKernel(join(root, dir), hashOf, BOOT_MODULES);
    if (kernel) return kernel;
  }
  return undefined;
}

/**
 * Downloads one kernel package with `apt-get download` (no system-wide install), unpacks it with
 * `dpkg -x` into a scratch directory, and keeps only what the guest needs: vmlinuz and the guest
 * modules (~15 MB instead of ~130 MB). The cache entry appears by rename, complete or not at all.
 */
async function downloadKernel(store: Store, pkg: string, version: string, progress: (m: string) => void): Promise<CachedKernel> {
  const root = kernelCacheRoot(store);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const scratch = mkdtempSync(join(root, '.download-'));
  try {
    progress(`downloading ${pkg} ${version}`);
    await hostCommand('apt-get', ['download', '-q', `${pkg}=${version}`], {
      cwd: scratch,
      failCode: 'missing_prerequisite',
      hint: 'check network access to the Debian mirror, then run: fleetbox setup --yes',
      timeoutMs: 600_000,
    });
    const deb = readdirSync(scratch).find((f) => f.endsWith('.deb'));
    if (!deb) throw new FleetboxError('missing_prerequisite', `apt-get download left no .deb for ${pkg}; run: fleetbox setup --yes`);
    progress(`unpacking ${deb}`);
    const unpacked = join(scratch, 'root');
    await hostCommand('dpkg', ['-x', join(scratch, deb), unpacked], { timeoutMs: 300_000 });
    const boot = join(unpacked, 'boot');
    const vmlinuz = existsSync(boot) ? readdirSync(boot).find((f) => f.startsWith('vmlinuz-')) : undefined;
    if (!vmlinuz) throw new FleetboxError('io', `${deb} has no boot/vmlinuz-*; remove ${root} and retry`);
    const release = vmlinuz.slice('vmlinuz-'.length);
    const entry = join(scratch, 'entry');
    mkdirSync(join(entry, 'modules'), { recursive: true });
    copyFileSync(join(boot, vmlinuz), join(entry, 'vmlinuz'));
    const files: Record<string, string> = {};
    const moduleRoot = join(unpacked, 'lib', 'modules', release, 'kernel');
    for (const module of ALL_GUEST_MODULES) {
      const from = join(moduleRoot, module.path);
      if (!existsSync(from)) throw new FleetboxError('io', `${pkg} lacks the guest module ${module.path}; this kernel cannot run fleetbox guests`);
      copyFileSync(from, join(entry, 'modules', `${module.name}.ko`));
    }
    for (const file of ['vmlinuz', ...ALL_GUEST_MODULES.map((m) => `modules/${m.name}.ko`)]) {
      files[file] = (await sha256FileCached(join(entry, file))) ?? '';
    }
    const record: KernelRecord = { package: pkg, version, release, files };
    writeJsonAtomic(join(entry, 'kernel.json'), record);
    const dir = kernelDir(store, pkg, version);
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(entry, dir);
    } catch (error) {
      // Another process finished the same download first; its entry is as good as ours.
      const theirs = await verifiedKernel(dir);
      if (theirs) return theirs;
      throw new FleetboxError('io', `cannot store the kernel in ${dir}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
    }
    return describe(dir, record);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The guest kernel: the cached one if it is the current Debian cloud kernel and intact, else a
 * fresh download. Without apt's lists (not a Debian host, lists cleaned) any intact cached kernel
 * is used rather than failing.
 */
export async function ensureKernel(store: Store, progress: (message: string) => void = () => {}, hashOf: FileHasher = sha256FileCached): Promise<CachedKernel> {
  let wanted: { package: string; version: string };
  try {
    wanted = await resolveKernelPackage(store);
  } catch (error) {
    const cached = await newestCachedKernel(store, hashOf);
    if (cached && isFleetboxError(error, 'missing_prerequisite')) return cached;
    throw error;
  }
  const dir = kernelDir(store, wanted.package, wanted.version);
  const cached = await verifiedKernel(dir, hashOf);
  if (cached) return cached;
  if (existsSync(dir)) progress(`kernel cache ${dir} is damaged; downloading it again`);
  return downloadKernel(store, wanted.package, wanted.version, progress);
}
