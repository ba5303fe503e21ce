import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { GuestImage } from '../../image/ensure-image.js';
import { findBinary } from '../../host/binaries.js';
import { readJson, writeJsonAtomic } from '../../store/atomic.js';
import type { Store } from '../../store/layout.js';
import { signalRecorded } from '../../host/proc.js';
import { kernelCommandLine, qemuArguments, type Accelerator } from './command-line.js';
import { hostCpuKhz } from './host-cpu.js';
import { readConsole } from './serial-console.js';
import { launchArgv, QEMU_BINARY, spawnQemu } from './spawn-qemu.js';

/** A KVM guest of ours reaches its ready marker in well under a second; TCG needs ~1.8 s. */
const PROBE_BUDGET_MS = 5_000;
const POLL_MS = 20;

const VerdictSchema = z.object({
  accel: z.enum(['kvm', 'tcg']),
  reason: z.string(),
  /** What the verdict depends on; a different key means probe again. */
  key: z.string(),
  checkedAt: z.string(),
});
export type KvmVerdict = z.infer<typeof VerdictSchema>;

export function kvmVerdictPath(store: Store): string {
  // Beside the images: the verdict depends on the guest kernel, and stores that share an image
  // cache (test suites) share it too.
  return join(store.imagesDir, 'kvm-verdict.json');
}

/** /dev/kvm that this user may open read-write; opening says nothing about running guests. */
function kvmDeviceUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Host kernel, QEMU build and guest kernel: a change to any of them may change the answer. */
function verdictKey(image: GuestImage): string {
  const qemu = findBinary(QEMU_BINARY);
  const qemuId = qemu ? `${statSync(qemu).size}:${statSync(qemu).mtimeMs}` : 'none';
  return `${release()}|${qemuId}|${image.manifest.kernel.release}`;
}

export function readKvmVerdict(store: Store): KvmVerdict | undefined {
  try {
    return readJson(kvmVerdictPath(store), VerdictSchema);
  } catch {
    return undefined;
  }
}

/**
 * Boots the guest image once with `-accel kvm` (no network, no disk) and watches for the ready
 * marker. /dev/kvm opens on hosts where KVM cannot run our guests (kvm_pvm runs only PVM-built
 * kernels: Debian kernels hang, or QEMU aborts on an MSR), so only a guest that really boots counts.
 */
async function probeBoot(store: Store, image: GuestImage): Promise<{ ok: boolean; reason: string }> {
  const dir = mkdtempSync(join(store.runDir, 'kvm-'));
  const serial = join(dir, 'serial.log');
  const started = Date.now();
  try {
    const args = qemuArguments({
      accel: 'kvm',
      cpus: 1,
      memoryMiB: 256,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: kernelCommandLine({ name: 'kvm-probe', network: null, cpuKhz: hostCpuKhz() }),
      serialLog: serial,
    });
    const handle = await spawnQemu(launchArgv(args, null), join(dir, 'qemu.log'), dir);
    let exited = false;
    void handle.exited.then(() => (exited = true));
    try {
      while (Date.now() - started < PROBE_BUDGET_MS) {
        if (readConsole(serial, 'kvm-probe').ready) return { ok: true, reason: `a KVM guest booted in ${Date.now() - started} ms` };
        if (exited) return { ok: false, reason: 'QEMU exited while booting a KVM guest (e.g. kvm_pvm cannot run this kernel)' };
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      return { ok: false, reason: `a KVM guest did not boot within ${PROBE_BUDGET_MS} ms` };
    } finally {
      signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
      await handle.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const inFlight = new Map<string, Promise<KvmVerdict>>();

/**
 * KVM or TCG for this installation. The verdict of one probe boot is cached in the store and
 * reused until the host kernel, QEMU or the guest kernel changes. `forced` (the user's
 * FLEETBOX_ACCEL=tcg|kvm, handed over in the holder options) overrides it, e.g. to compare, or
 * on a host where the probe is wrong.
 */
export async function chooseAccelerator(store: Store, image: GuestImage, progress: (message: string) => void = () => {}, forced?: Accelerator): Promise<KvmVerdict> {
  if (forced !== undefined) {
    return { accel: forced, reason: 'FLEETBOX_ACCEL', key: 'env', checkedAt: new Date().toISOString() };
  }
  if (!kvmDeviceUsable()) {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible', key: 'no-device', checkedAt: new Date().toISOString() };
  }
  const key = verdictKey(image);
  const cached = readKvmVerdict(store);
  if (cached?.key === key) return cached;
  let pending = inFlight.get(store.home);
  if (!pending) {
    pending = (async () => {
      progress('checking whether KVM can run guests here (once)');
      const outcome = await probeBoot(store, image);
      const verdict: KvmVerdict = {
        accel: outcome.ok ? 'kvm' : 'tcg',
        reason: outcome.reason,
        key,
        checkedAt: new Date().toISOString(),
      };
      writeJsonAtomic(kvmVerdictPath(store), verdict);
      return verdict;
    })().finally(() => inFlight.delete(store.home));
    inFlight.set(store.home, pending);
  }
  return pending;
}

export type { Accelerator };
