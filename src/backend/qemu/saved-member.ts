import { randomBytes } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { findBinary } from '../../host/binaries.js';
import { runCommand } from '../../host/run-command.js';
import { signalRecorded } from '../../host/proc.js';
import type { GuestImage } from '../../image/ensure-image.js';
import { forkIdentityScript } from '../../image/guest-init.js';
import { crashPoint } from '../../protocol/crash-point.js';
import { FleetboxError } from '../../protocol/errors.js';
import { readJson, writeJsonAtomic } from '../../store/atomic.js';
import type { Store } from '../../store/layout.js';
import type { MemberConfig } from '../../store/member-config.js';
import type { BackendContext, MemberHandle } from '../types.js';
import type { GuestAgent } from './agent.js';
import { agentExec } from './agent-exec.js';
import { portSocketsOf, qemuArguments, type Accelerator } from './command-line.js';
import { migrationDone, restoreIncoming, shellQuote, waitFor } from './migration.js';
import { QmpClient } from './qmp.js';
import { fileIdentity, qemuIdentity } from './template.js';

/*
 * A member saved whole for a snapshot (`fleetbox snapshot`): QEMU migrates the paused guest, all
 * of its RAM included, into a state file beside a copy of its disk, and this record says what a
 * restore needs to rebuild the same machine (QEMU refuses a state whose devices differ). A fork
 * member (config `restore`) starts from it with `-incoming defer` instead of booting.
 */

const SavedMemberSchema = z.object({
  version: z.literal(1),
  member: z.string(),
  /** The QEMU build and guest image it ran: a restore on any other is refused. */
  qemu: z.string(),
  image: z.string(),
  accel: z.enum(['kvm', 'tcg']),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  /** The guest's kernel command line as it booted (a clone: its template's). */
  cmdline: z.string(),
  /** Its RAM was a named memory backend (a clone's), not the machine's own. */
  memoryBackend: z.boolean(),
  /** The network card's address: part of the device state, and the guest's own. */
  mac: z.string(),
  disk: z.boolean(),
  /** The state file as written (device, inode, size, times): any change refuses it. */
  state: z.object({ bytes: z.number().int(), identity: z.string() }),
  savedAt: z.string(),
});
type SavedMember = z.infer<typeof SavedMemberSchema>;

/** How a running member was launched: what a snapshot of it must record. */
export interface Launched {
  accel: Accelerator;
  cmdline: string;
  memoryBackend: boolean;
  image: GuestImage;
  mac: string;
  disk: boolean;
}

/** A saved member takes its whole RAM along; a slow disk may take a while. */
const SAVE_BUDGET_MS = 5 * 60_000;

/** Copies a member disk keeping its holes (a 1 GiB disk that holds 20 MiB stays 20 MiB). */
async function copyDisk(from: string, to: string): Promise<void> {
  const cp = findBinary('cp') ?? 'cp';
  const result = await runCommand(cp, ['--sparse=always', '--reflink=auto', '--', from, to], { timeoutMs: SAVE_BUDGET_MS });
  if (result.exitCode !== 0) throw new FleetboxError('io', `copying the disk ${from} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
}

/** Why this member cannot be saved, or undefined. */
export function cannotSave(ctx: BackendContext, launched: Launched | undefined): string | undefined {
  if (ctx.config.rootfs !== 'initramfs' || ctx.config.shares.length > 0) {
    return `${ctx.config.name} runs on the host's file server (--rootfs ${ctx.config.rootfs}${ctx.config.shares.length > 0 ? ', --share' : ''}), whose state QEMU cannot save; snapshots take members with the RAM root`;
  }
  if (!launched) return `${ctx.config.name} was not started by this holder`;
  return undefined;
}

/** Saves the paused member into `dir`: its state (RAM and devices), its disk, and the record. */
export async function saveMember(ctx: BackendContext, launched: Launched, paths: { qmp: string; disk: string }, handle: MemberHandle, dir: string): Promise<void> {
  const state = join(dir, 'state');
  const partial = `${state}.part`;
  let exited = false;
  void handle.exited.then(() => (exited = true));
  const qmp = await QmpClient.connect(paths.qmp, 5_000);
  let migrating = false;
  try {
    const status = ((await qmp.execute('query-status')) as { status?: string }).status;
    if (status !== 'paused') throw new FleetboxError('io', `${ctx.config.name}: QEMU reports ${status ?? 'nothing'}, not paused, before saving`);
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: false }] });
    // The file gets its name once `cat` has written all of it: QEMU reports the migration
    // completed when it has handed the last bytes to the pipe, not when they are in the file.
    // In the background, reading QEMU's pipe through fd 3 (a background job's own stdin is
    // /dev/null): some QEMU builds end the channel's shell when they close the pipe, which must
    // not cut `cat` short or skip the rename.
    await qmp.execute('migrate', { uri: `exec:exec 3<&0; { cat <&3 > ${shellQuote(partial)} && mv ${shellQuote(partial)} ${shellQuote(state)}; } &` });
    migrating = true;
    await migrationDone(qmp, 'writing the state', () => exited, SAVE_BUDGET_MS);
    migrating = false;
    await waitFor('the state file landing', 60_000, () => (existsSync(state) ? true : undefined), () => exited);
  } catch (error) {
    // A save that failed must not go on writing once the member runs again.
    if (migrating) await qmp.execute('migrate_cancel').catch(() => undefined);
    throw new FleetboxError('io', `saving ${ctx.config.name} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    qmp.close();
  }
  // Copied while the guest stands still: the disk is exactly what the saved RAM last wrote.
  if (launched.disk) await copyDisk(paths.disk, join(dir, 'disk'));
  const record: SavedMember = {
    version: 1,
    member: ctx.config.name,
    qemu: qemuIdentity(),
    image: launched.image.manifest.hash,
    accel: launched.accel,
    cpus: ctx.config.cpus,
    memoryMiB: ctx.config.memoryMiB,
    cmdline: launched.cmdline,
    memoryBackend: launched.memoryBackend,
    mac: launched.mac,
    disk: launched.disk,
    state: { bytes: statSync(state).size, identity: fileIdentity(state) },
    savedAt: new Date().toISOString(),
  };
  writeJsonAtomic(join(dir, 'qemu.json'), record);
}

/** A saved member a fork member restores from, verified. */
export interface Restorable {
  dir: string;
  record: SavedMember;
}

/**
 * The saved member `config.restore` names, checked against this host before anything starts:
 * present, intact, made by this QEMU build from this guest image, of the same size. Otherwise a
 * one-line `boot_failed` that says why and what to do.
 */
export function findRestorable(store: Store, config: MemberConfig, image: GuestImage): Restorable {
  const from = config.restore;
  if (!from) throw new FleetboxError('internal', `${config.name} has nothing to restore`);
  const refuse = (why: string) => new FleetboxError('boot_failed', `${config.name} cannot be restored from snapshot ${from.snapshot}: ${why}`);
  const dir = join(store.snapshotDir(from.snapshot), from.member);
  let record: SavedMember | undefined;
  try {
    record = readJson(join(dir, 'qemu.json'), SavedMemberSchema);
  } catch {
    throw refuse(`the record of ${from.member} is damaged; take the snapshot again`);
  }
  if (!record) throw refuse(`it is gone ('fleetbox snapshot ls'); remove this cluster with 'fleetbox rm ${config.cluster} --yes'`);
  if (record.qemu !== qemuIdentity()) throw refuse(`it was saved by another QEMU build (${record.qemu}); take it again with this one`);
  if (record.image !== image.manifest.hash) throw refuse('it was saved with another guest image; take it again');
  if (record.cpus !== config.cpus || record.memoryMiB !== config.memoryMiB) throw refuse(`it has ${record.cpus} CPU(s) and ${record.memoryMiB} MiB, the member ${config.cpus} and ${config.memoryMiB} MiB`);
  const state = join(dir, 'state');
  if (!existsSync(state) || statSync(state).size !== record.state.bytes || fileIdentity(state) !== record.state.identity) {
    throw refuse(`the state file of ${from.member} is missing, truncated or was changed since it was saved; take the snapshot again`);
  }
  if (record.disk && !existsSync(join(dir, 'disk'))) throw refuse(`the disk of ${from.member} is missing; take the snapshot again`);
  return { dir, record };
}

/**
 * Starts the member from its saved state: the disk copied back, QEMU started waiting for the
 * state, the state restored and run on, then the guest renamed (with fresh entropy) through its
 * agent. Any failure leaves nothing running and says why; there is no boot to fall back to (a
 * fresh guest is not what a fork asked for).
 */
export async function restoreMember(
  ctx: BackendContext,
  saved: Restorable,
  image: GuestImage,
  paths: { serial: string; qmp: string; agent: string; disk: string; qemuLog: string; dir: string },
  spawn: (args: string[]) => Promise<MemberHandle>,
  agent: GuestAgent,
): Promise<MemberHandle> {
  const { config, network } = ctx;
  const { record } = saved;
  if (!network.tap) throw new FleetboxError('internal', `${config.name} has no tap; a restored member needs a bridge network`);
  if (record.disk) await copyDisk(join(saved.dir, 'disk'), paths.disk);
  const args = qemuArguments({
    accel: record.accel,
    cpus: record.cpus,
    memoryMiB: record.memoryMiB,
    kernel: image.kernel,
    initrd: image.initrd,
    cmdline: record.cmdline,
    serialLog: paths.serial,
    qmpSocket: paths.qmp,
    agentSocket: paths.agent,
    tap: { ifname: network.tap, mac: record.mac },
    ...(record.disk && { disk: paths.disk }),
    ...(record.memoryBackend && { memoryRam: true }),
    incoming: true,
  });
  const handle = await spawn(args);
  try {
    crashPoint('holder-mid-restore');
    await restoreIncoming({ qmpSocket: paths.qmp, state: join(saved.dir, 'state'), ignoreShared: false, handle, what: `restoring ${config.name} from snapshot ${config.restore?.snapshot ?? ''}`, member: config.name, budgetMs: 60_000 });
    const script = forkIdentityScript({ name: config.name, ip: network.ip, prefix: network.prefix, epochSeconds: Date.now() / 1000 });
    const result = await agentExec(agent, config.name, script, { timeoutMs: 10_000, input: randomBytes(64) });
    if (result.exitCode !== 0) {
      throw new FleetboxError('boot_failed', `${config.name}: the restored guest could not take its name: ${result.stderr.toString().trim().split('\n').slice(-2).join(' | ') || `exit ${result.exitCode}`}`);
    }
    return handle;
  } catch (error) {
    signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
    await handle.exited;
    rmSync(paths.qmp, { force: true });
    rmSync(paths.agent, { force: true });
    for (const socket of portSocketsOf(paths.agent)) rmSync(socket, { force: true });
    throw error instanceof FleetboxError && error.code === 'boot_failed' ? error : new FleetboxError('boot_failed', `${config.name}: ${(error as Error).message}`, { cause: error });
  }
}
