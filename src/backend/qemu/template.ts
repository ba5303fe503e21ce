import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { GuestImage } from '../../image/ensure-image.js';
import { sha256File, sha256Text } from '../../image/file-hash.js';
import { TEMPLATE_MARKER, cloneIdentityScript } from '../../image/guest-init.js';
import { findBinary } from '../../host/binaries.js';
import type { Logger } from '../../host/logger.js';
import { signalRecorded } from '../../host/proc.js';
import { crashPoint } from '../../protocol/crash-point.js';
import { FleetboxError } from '../../protocol/errors.js';
import { readJson, writeJsonAtomic } from '../../store/atomic.js';
import type { Store } from '../../store/layout.js';
import { MemberConfigSchema } from '../../store/member-config.js';
import { withLock } from '../../store/lock.js';
import type { MemberHandle } from '../types.js';
import { GuestAgent } from './agent.js';
import { agentExec } from './agent-exec.js';
import { migrationDone, qmpWhenUp, restoreIncoming, shellQuote, waitFor } from './migration.js';
import type { QmpClient } from './qmp.js';
import { kernelCommandLine, qemuArguments, type Accelerator, type QemuInvocation } from './command-line.js';
import { hostCpuKhz } from './host-cpu.js';
import { readTail } from '../../host/tail.js';
import { consoleTail, readConsole } from './serial-console.js';
import { launchArgv, QEMU_BINARY, spawnQemu } from './spawn-qemu.js';

/*
 * Template clones (QEMU's VM templating, as Kata uses it): one guest per template key boots to
 * its agent with no identity, its RAM in a file (`memory-backend-file`, share=on); it is paused
 * and migrated with `x-ignore-shared`, so the state file holds the devices and CPU (~60 KB) and
 * the RAM stays in its file. A clone maps that file private (copy-on-write: the template's pages
 * are shared until written), restores the state (`-incoming defer`, `migrate-incoming`), runs on
 * and gets its identity from the holder through its agent.
 */

/** Bumped when what a template holds changes in a way the key does not capture. */
const TEMPLATE_FORMAT = '4';
const BUILD_BUDGET_MS = 90_000;

export interface TemplateSpec {
  image: GuestImage;
  accel: Accelerator;
  cpus: number;
  memoryMiB: number;
}

const ManifestSchema = z.object({
  key: z.string(),
  format: z.string(),
  image: z.string(),
  accel: z.enum(['kvm', 'tcg']),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  qemu: z.string(),
  /** The template's kernel command line with the TSC hint masked (part of the key). */
  cmdline: z.string(),
  /** The kernel command line the template booted with; a clone passes the same. */
  bootCmdline: z.string(),
  /** Identity of the RAM file when saved (device, inode, size, mtime, ctime): any change refuses it. */
  ram: z.string(),
  stateBytes: z.number().int(),
  stateSha256: z.string(),
  bootMs: z.number(),
  createdAt: z.string(),
});
type Manifest = z.infer<typeof ManifestSchema>;

export interface Template {
  dir: string;
  ram: string;
  state: string;
  manifest: Manifest;
}

export function templatesDir(store: Store): string {
  return join(store.imagesDir, 'templates');
}

/** The QEMU build: a clone (or a snapshot) must restore on the same binary that saved its state. */
export function qemuIdentity(): string {
  const qemu = findBinary(QEMU_BINARY);
  if (!qemu) return 'none';
  const s = statSync(qemu);
  return `${qemu}:${s.size}:${s.mtimeMs}`;
}

export function fileIdentity(path: string): string {
  const s = statSync(path);
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/** The kernel command line a template boots with (it is in every clone's RAM). */
function templateCommandLine(): string {
  return kernelCommandLine({ name: 'template', network: null, cpuKhz: hostCpuKhz(), template: true });
}

/**
 * The command line as far as a template depends on it. The TSC frequency hint only steers the
 * template's own boot (a clone keeps the calibrated kernel), and "cpu MHz" moves between reads
 * on a host that scales its clock: it must not make every `up` a new template.
 */
function commandLineShape(cmdline: string): string {
  return cmdline.replace(/\btsc_early_khz=\d+/, 'tsc_early_khz=*');
}

/** Everything a template depends on: a clone may only restore on exactly this. */
function templateIdentity(spec: TemplateSpec) {
  return {
    format: TEMPLATE_FORMAT,
    image: spec.image.manifest.hash,
    accel: spec.accel,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    qemu: qemuIdentity(),
    cmdline: commandLineShape(templateCommandLine()),
  };
}

export function templateKey(spec: TemplateSpec): string {
  return sha256Text(JSON.stringify(templateIdentity(spec))).slice(0, 16);
}

/** The template in `dir` if it is intact and made for `key` on this QEMU, else why not. */
async function verifyTemplate(dir: string, key: string): Promise<{ template?: Template; problem?: string }> {
  let manifest: Manifest | undefined;
  try {
    manifest = readJson(join(dir, 'manifest.json'), ManifestSchema);
  } catch {
    return { problem: 'its manifest is unreadable' };
  }
  if (!manifest) return { problem: 'not made yet' };
  if (manifest.key !== key || manifest.format !== TEMPLATE_FORMAT) return { problem: 'it was made for another image, size or format' };
  if (manifest.qemu !== qemuIdentity()) return { problem: `it was saved by another QEMU build (${manifest.qemu})` };
  const ram = join(dir, 'ram');
  const state = join(dir, 'state');
  if (!existsSync(ram) || fileIdentity(ram) !== manifest.ram) return { problem: 'its RAM file is missing or was changed since it was saved' };
  if (!existsSync(state) || statSync(state).size !== manifest.stateBytes || (await sha256File(state)) !== manifest.stateSha256) {
    return { problem: 'its state file is missing, truncated or damaged' };
  }
  return { template: { dir, ram, state, manifest } };
}

/** The QEMU arguments a template and its clones share: same devices in the same order. */
function sharedInvocation(spec: TemplateSpec, cmdline: string): Omit<QemuInvocation, 'serialLog'> {
  return { accel: spec.accel, cpus: spec.cpus, memoryMiB: spec.memoryMiB, kernel: spec.image.kernel, initrd: spec.image.initrd, cmdline };
}

/** Boots a template in `scratch` (RAM file there), saves its state, and writes the manifest. */
async function buildTemplate(spec: TemplateSpec, key: string, scratch: string): Promise<void> {
  // Its sockets and logs live in the build directory and go with it, even after a crash.
  const run = join(scratch, 'run');
  mkdirSync(run, { mode: 0o700 });
  if (join(run, 'agent.sock').length > 100) throw new FleetboxError('path_too_long', `the template's sockets would not fit a unix socket path under ${scratch}`);
  const ram = join(scratch, 'ram');
  const state = join(scratch, 'state');
  const serial = join(run, 'serial.log');
  const qmpPath = join(run, 'qmp.sock');
  const agentPath = join(run, 'agent.sock');
  const cmdline = templateCommandLine();
  const started = Date.now();
  const args = qemuArguments({
    ...sharedInvocation(spec, cmdline),
    serialLog: serial,
    qmpSocket: qmpPath,
    agentSocket: agentPath,
    memoryFile: { path: ram, shared: true },
    isolatedNic: true,
  });
  const handle = await spawnQemu(launchArgv(args, null), join(run, 'qemu.log'), run);
  let exited = false;
  void handle.exited.then(() => (exited = true));
  const agent = new GuestAgent(agentPath, 'template');
  let qmp: QmpClient | undefined;
  try {
    crashPoint('holder-mid-template');
    await waitFor('the template guest booted', BUILD_BUDGET_MS, () => (readTail(serial, 1 << 16).includes(`${TEMPLATE_MARKER} `) ? true : undefined), () => exited);
    // A step of its init that failed (SSH, agent) would fail in every clone, silently: no template.
    const failed = readConsole(serial, 'template').error;
    if (failed) throw new FleetboxError('boot_failed', `its init reported: ${failed}`);
    // Its agent answers: a clone's first agent call finds it ready.
    await agent.call('guest-ping', undefined, 10_000);
    agent.close();
    const bootMs = Date.now() - started;
    qmp = await qmpWhenUp(qmpPath, () => exited);
    await qmp.execute('stop');
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(state)}` });
    await migrationDone(qmp, 'saving the template', () => exited);
    await qmp.execute('quit').catch(() => undefined);
    await Promise.race([handle.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    const manifest: Manifest = {
      key,
      ...templateIdentity(spec),
      bootCmdline: cmdline,
      ram: '',
      stateBytes: statSync(state).size,
      stateSha256: await sha256File(state),
      bootMs,
      createdAt: new Date().toISOString(),
    };
    // The RAM file's identity is recorded once it is in place (a rename moves its ctime).
    writeJsonAtomic(join(scratch, 'manifest.json'), manifest);
  } catch (error) {
    throw new FleetboxError('boot_failed', `the template could not be made: ${(error as Error).message}${existsSync(serial) ? `; console: ${consoleTail(serial, 5)}` : ''}`, { cause: error });
  } finally {
    agent.close();
    qmp?.close();
    signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
    await handle.exited;
    rmSync(run, { recursive: true, force: true });
  }
}

const inFlight = new Map<string, Promise<Template>>();

const FailureSchema = z.object({ key: z.string(), image: z.string(), at: z.string(), why: z.string() });

/** Where a failed build of `key` is remembered, so the next start boots at once instead of failing the same way. */
function failurePath(root: string, key: string): string {
  return join(root, `${key}.failed.json`);
}

/** What stops `ensureTemplate` from building again without being asked. */
function rememberedFailure(root: string, key: string): z.infer<typeof FailureSchema> | undefined {
  try {
    return readJson(failurePath(root, key), FailureSchema);
  } catch {
    return undefined;
  }
}

export interface EnsureTemplateOptions {
  /**
   * Build even when the last build for this key failed (`up --fast`, `fleetbox setup`). Without
   * it a remembered failure is thrown at once: members boot, and nobody pays for the same failed
   * build on every start.
   */
  retryFailed?: boolean;
}

/**
 * The template for `spec`: the cached one when intact, else a new one (a boot of ~2 s plus a
 * save). Appears by rename, complete or not at all; one build per key across processes (a lock
 * beside it). Templates of other guest images are removed: they can never be restored again. A
 * failed build is remembered beside the templates (see `retryFailed`).
 */
export function ensureTemplate(store: Store, spec: TemplateSpec, log: Logger, progress: (message: string) => void, options: EnsureTemplateOptions = {}): Promise<Template> {
  const key = templateKey(spec);
  const root = templatesDir(store);
  const dir = join(root, key);
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = (async () => {
      const cached = await verifyTemplate(dir, key);
      if (cached.template) return cached.template;
      const failed = options.retryFailed ? undefined : rememberedFailure(root, key);
      if (failed) {
        throw new FleetboxError('boot_failed', `making the template failed before (${failed.at}: ${failed.why}); members boot instead. Try again with 'fleetbox up --fast' or 'fleetbox setup --yes'`);
      }
      mkdirSync(root, { recursive: true, mode: 0o700 });
      return withLock(join(root, `${key}.lock`), async () => {
        const again = await verifyTemplate(dir, key);
        if (again.template) return again.template;
        // Under the lock nobody else builds this key: what a crashed build left goes now.
        for (const entry of readdirSync(root)) if (entry.startsWith(`.build-${key}-`)) rmSync(join(root, entry), { recursive: true, force: true });
        progress(`making a template for fast starts (once: ${again.problem ?? 'not made yet'})`);
        log.info('template_build', { key, why: again.problem ?? 'not made yet' });
        const scratch = mkdtempSync(join(root, `.build-${key}-`));
        try {
          await buildTemplate(spec, key, scratch).catch((error: unknown) => {
            writeJsonAtomic(failurePath(root, key), { key, image: spec.image.manifest.hash, at: new Date().toISOString(), why: (error as Error).message });
            throw error;
          });
          rmSync(failurePath(root, key), { force: true });
          rmSync(dir, { recursive: true, force: true });
          renameSync(scratch, dir);
          const manifest = readJson(join(dir, 'manifest.json'), ManifestSchema);
          if (manifest) writeJsonAtomic(join(dir, 'manifest.json'), { ...manifest, ram: fileIdentity(join(dir, 'ram')) });
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
        removeStaleTemplates(store, spec.image.manifest.hash);
        const made = await verifyTemplate(dir, key);
        if (!made.template) throw new FleetboxError('io', `the template just made is not usable: ${made.problem ?? 'unknown'}`);
        log.info('template_ready', { key, bootMs: made.template.manifest.bootMs, stateBytes: made.template.manifest.stateBytes });
        return made.template;
      });
    })().finally(() => inFlight.delete(dir));
    inFlight.set(dir, pending);
  }
  return pending;
}

/** Templates that can never be restored again (see below) and abandoned build directories. */
function removeStaleTemplates(store: Store, imageHash: string): void {
  const root = templatesDir(store);
  for (const entry of readdirSync(root)) {
    const path = join(root, entry);
    if (entry.startsWith('.build-')) {
      // A build of another process may still run: only old ones are abandoned.
      if (Date.now() - statSync(path).mtimeMs > 10 * 60_000) rmSync(path, { recursive: true, force: true });
      continue;
    }
    if (entry.endsWith('.lock')) continue;
    if (entry.endsWith('.failed.json')) {
      // A failure remembered for another guest image can never matter again.
      if (rememberedFailure(root, entry.slice(0, -'.failed.json'.length))?.image !== imageHash) rmSync(path, { force: true });
      continue;
    }
    let manifest: Manifest | undefined;
    try {
      manifest = readJson(join(path, 'manifest.json'), ManifestSchema);
    } catch {
      manifest = undefined;
    }
    // Made for another guest image, kernel command line or QEMU build: never restorable again.
    if (manifest?.image !== imageHash || manifest.cmdline !== commandLineShape(templateCommandLine()) || manifest.qemu !== qemuIdentity()) {
      rmSync(path, { recursive: true, force: true });
    }
  }
}

/** What a clone needs from the member: its devices' paths and its identity. */
export interface CloneTarget {
  name: string;
  serialLog: string;
  qmpSocket: string;
  agentSocket: string;
  tap: { ifname: string; mac: string };
  ip: string;
  prefix: number;
  gateway: string | null;
}

/** QEMU arguments of a clone of `template` for `target`. */
export function cloneArguments(template: Template, spec: TemplateSpec, target: CloneTarget): string[] {
  return qemuArguments({
    ...sharedInvocation(spec, template.manifest.bootCmdline),
    serialLog: target.serialLog,
    qmpSocket: target.qmpSocket,
    agentSocket: target.agentSocket,
    memoryFile: { path: template.ram, shared: false },
    tap: target.tap,
    incoming: true,
  });
}

/**
 * Brings a started clone QEMU (waiting for its incoming state) to a running member: restores
 * the template's state, runs it on, and gives it its identity through its agent. The console
 * then carries the ready marker, so the usual readiness check follows.
 */
export async function restoreClone(template: Template, target: CloneTarget, handle: MemberHandle, agent: GuestAgent): Promise<void> {
  await restoreIncoming({ qmpSocket: target.qmpSocket, state: template.state, ignoreShared: true, handle, what: 'restoring the template', member: target.name });
  const script = cloneIdentityScript({ name: target.name, ip: target.ip, prefix: target.prefix, gateway: target.gateway, mac: target.tap.mac, epochSeconds: Date.now() / 1000 });
  const result = await agentExec(agent, target.name, script, { timeoutMs: 10_000, input: randomBytes(64) });
  if (result.exitCode !== 0) {
    throw new FleetboxError('boot_failed', `${target.name}: the clone could not take its identity: ${result.stderr.toString().trim().split('\n').slice(-2).join(' | ') || `exit ${result.exitCode}`}`);
  }
}

/**
 * The template a default member (1 CPU, 256 MiB, this image) is cloned from, made now so that
 * the first `up` does not pay for it (`fleetbox setup`, the vitest global set-up). A template
 * that cannot be made is reported, never fatal: members then boot.
 */
export async function prepareDefaultTemplate(store: Store, image: GuestImage, accel: Accelerator, progress: (message: string) => void): Promise<void> {
  const defaults = MemberConfigSchema.parse({ name: 'template', cluster: 'template', backend: 'qemu', createdAt: '' });
  const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  try {
    const template = await ensureTemplate(store, { image, accel, cpus: defaults.cpus, memoryMiB: defaults.memoryMiB }, log, progress, { retryFailed: true });
    progress(`fast starts: template ${template.manifest.key} ready`);
  } catch (error) {
    progress(`fast starts unavailable, members will boot: ${(error as Error).message}`);
  }
}
