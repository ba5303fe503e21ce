import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { findBinary } from '../host/binaries.js';
import { FleetboxError } from '../protocol/errors.js';
import { writeJsonAtomic } from '../store/atomic.js';
import type { Store } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { imageDir, membersUsing, readRootImage, rootsDir, type RootImage } from '../store/root-images.js';
import { validateName } from '../store/names.js';
import { sha256Text } from './file-hash.js';
import { hostCommand } from './host-command.js';

/*
 * Guest root file systems built from Debian packages with mmdebstrap: images/roots/<name>/
 * holds root/ (the tree a member's file server serves read-only) and image.json. An image is
 * rebuilt only when its inputs (suite, packages, format) change, and appears by rename, complete
 * or not at all.
 */

/** Bumped when the build changes in a way the inputs do not show. */
const ROOT_IMAGE_FORMAT = '1';
/** mmdebstrap's variant: Essential packages and apt, then what the user asks for. */
const VARIANT = 'apt';
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const SUITE_NAME = /^[a-z][a-z0-9-]*$/;
/** Added to every image: the SSH server fleetbox reaches the guest through. */
const GUEST_SSH_PACKAGE = 'dropbear-bin';

export interface BuildImageOptions {
  name: string;
  packages?: readonly string[];
  /** Debian suite (default: the host's own, e.g. bookworm). */
  suite?: string;
  /** Build even when an image with the same inputs exists. */
  force?: boolean;
  onProgress?: (line: string) => void;
}

/** The host's Debian suite (VERSION_CODENAME), the default of a build. */
export function hostSuite(): string {
  try {
    const codename = /^VERSION_CODENAME=(.+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]?.replace(/"/g, '');
    if (codename && SUITE_NAME.test(codename)) return codename;
  } catch {
    // no os-release
  }
  return 'bookworm';
}

function inputsHash(suite: string, packages: readonly string[]): string {
  return sha256Text(JSON.stringify({ format: ROOT_IMAGE_FORMAT, variant: VARIANT, suite, packages, ssh: GUEST_SSH_PACKAGE })).slice(0, 16);
}

/** mmdebstrap's "E: …" lines, for a one-line error: apt names the package it cannot find. */
function explainFailure(lines: string[], suite: string): string {
  const errors = lines.filter((line) => /^E: /.test(line)).map((line) => line.slice(3).trim());
  const missing = errors.map((e) => /Unable to locate package (\S+)/.exec(e)?.[1]).filter(Boolean);
  if (missing.length > 0) return `package ${[...new Set(missing)].join(', ')} does not exist in Debian ${suite}; check the name (apt-cache search …)`;
  const space = lines.find((line) => /No space left on device/i.test(line));
  if (space) return 'the disk is full (No space left on device); free space under the fleetbox home and build again';
  return errors.at(-1) ?? lines.filter(Boolean).at(-1) ?? 'mmdebstrap failed';
}

async function runMmdebstrap(args: string[], progress: (line: string) => void): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(findBinary('mmdebstrap') ?? 'mmdebstrap', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const lines: string[] = [];
  const take = (line: string) => {
    lines.push(line);
    if (lines.length > 400) lines.shift();
    if (line.trim()) progress(line.trim());
  };
  createInterface({ input: child.stdout }).on('line', take);
  createInterface({ input: child.stderr }).on('line', take);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new FleetboxError('missing_prerequisite', 'mmdebstrap is not installed; run: fleetbox setup --yes', { cause: error })
          : error,
      ),
    );
    child.once('close', (exit) => resolve(exit));
  });
  return { code, lines };
}

/**
 * `fleetbox image build`: a Debian root with `packages` (and what they depend on), cached under
 * the store. Returns the cached image when its inputs are unchanged.
 */
export async function buildRootImage(store: Store, options: BuildImageOptions): Promise<RootImage & { cached: boolean }> {
  const name = validateName(options.name, 'image name');
  const suite = options.suite ?? hostSuite();
  if (!SUITE_NAME.test(suite)) throw new FleetboxError('usage', `'${suite}' is not a Debian suite name (e.g. bookworm, trixie)`);
  const packages = [...new Set(options.packages ?? [])].sort();
  // The guest's SSH server comes from the image itself, so it matches the image's libraries.
  const install = [...new Set([...packages, GUEST_SSH_PACKAGE])].sort();
  const bad = packages.find((p) => !PACKAGE_NAME.test(p));
  if (bad !== undefined) throw new FleetboxError('usage', `'${bad}' is not a Debian package name; give names like postgresql,iproute2`);
  const progress = options.onProgress ?? (() => {});
  if (process.getuid?.() !== 0) throw new FleetboxError('missing_prerequisite', 'building an image needs root (mmdebstrap installs packages as root); run it with sudo');
  const hash = inputsHash(suite, packages);
  mkdirSync(rootsDir(store), { recursive: true, mode: 0o700 });
  return withLock(`${imageDir(store, name)}.lock`, async () => {
    const existing = readRootImage(store, name);
    if (existing && existing.hash === hash && !options.force) return { ...existing, cached: true };
    if (existing) {
      const users = membersUsing(store, name);
      if (users.length > 0) {
        throw new FleetboxError('busy', `image ${name} is used by ${users.join(', ')}; 'fleetbox rm' them first, or build under another name`);
      }
    }
    const scratch = mkdtempSync(join(rootsDir(store), `.build-${name}-`));
    const started = Date.now();
    try {
      progress(`building image ${name}: Debian ${suite}${packages.length > 0 ? ` with ${packages.join(', ')}` : ''}`);
      const args = [`--variant=${VARIANT}`, '--mode=root', '--format=directory', `--include=${install.join(',')}`, suite, join(scratch, 'root')];
      const { code, lines } = await runMmdebstrap(args, progress);
      if (code !== 0) throw new FleetboxError('io', `image ${name} was not built: ${explainFailure(lines, suite)}`);
      const bytes = Number((await hostCommand('du', ['-sb', join(scratch, 'root')])).split(/\s/)[0]) || 0;
      const manifest = { name, hash, suite, packages, variant: VARIANT, createdAt: new Date().toISOString(), buildSeconds: Math.round((Date.now() - started) / 100) / 10, bytes };
      writeJsonAtomic(join(scratch, 'image.json'), manifest);
      rmSync(imageDir(store, name), { recursive: true, force: true });
      renameSync(scratch, imageDir(store, name));
      progress(`image ${name} ready (${(bytes / 1048576).toFixed(0)} MiB in ${manifest.buildSeconds} s)`);
      return { ...manifest, root: join(imageDir(store, name), 'root'), cached: false };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new FleetboxError('io', `image ${name} was not built: the disk is full (No space left on device); free space and build again`, { cause: error });
      }
      throw error;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
}

/** `fleetbox image rm`: refused while a member is made with it. */
export async function removeRootImage(store: Store, name: string): Promise<void> {
  validateName(name, 'image name');
  await withLock(`${imageDir(store, name)}.lock`, async () => {
    if (!readRootImage(store, name) && !existsSync(imageDir(store, name))) {
      throw new FleetboxError('not_found', `no image named ${name}; 'fleetbox image ls' lists them`);
    }
    const users = membersUsing(store, name);
    if (users.length > 0) throw new FleetboxError('busy', `image ${name} is used by ${users.join(', ')}; 'fleetbox rm' them first`);
    rmSync(imageDir(store, name), { recursive: true, force: true });
  });
}
