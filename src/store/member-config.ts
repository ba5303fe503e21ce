import { z } from 'zod';

import { BACKENDS, INIT_KINDS, ROOTFS_KINDS, type BackendKind } from './backend-kinds.js';
import { ShareSchema } from './shares.js';

export { BACKENDS, INIT_KINDS, ROOTFS_KINDS };
export const BackendKindSchema = z.enum(BACKENDS);
export type { BackendKind };

/** How long a member may take from process start to answering, unless a call says otherwise. */
export const DEFAULT_BOOT_TIMEOUT_MS = 120_000;
/** How long image preparation (downloads, builds) may take; never charged to the boot budget. */
export const DEFAULT_PREPARE_TIMEOUT_MS = 30 * 60_000;

/** clusters/<cluster>/<member>/config.json: what a member is, written before it is booted. */
export const MemberConfigSchema = z.object({
  name: z.string(),
  cluster: z.string(),
  backend: BackendKindSchema,
  /** process backend: the shell command a member runs (default: the built-in TCP server). */
  cmd: z.string().optional(),
  /** process backend: the port the member listens on at its own address. */
  port: z.number().int().min(1).max(65535).default(7000),
  cpus: z.number().int().min(1).max(64).default(1),
  memoryMiB: z.number().int().min(64).max(65536).default(256),
  diskMiB: z.number().int().min(0).max(1048576).default(0),
  /** qemu: the guest's root file system (see ROOTFS_KINDS). */
  rootfs: z.enum(ROOTFS_KINDS).default('initramfs'),
  /** qemu, rootfs `image`: the name of the image (fleetbox image build) the member boots. */
  image: z.string().optional(),
  /** qemu, rootfs `image`: what runs as PID 1 (see INIT_KINDS). */
  init: z.enum(INIT_KINDS).default('fleetbox'),
  /** qemu: host folders every boot of the member mounts (checked again before each boot). */
  shares: z.array(ShareSchema).max(8).default([]),
  /**
   * qemu: start as a clone of a booted template instead of booting. Unset: whenever the member
   * can be cloned (the RAM guest without disk or shares); true (`up --fast`): always, refused
   * for a member that cannot be; false (`up --boot`): never.
   */
  fast: z.boolean().optional(),
  /**
   * qemu: start from a saved member instead of booting (`up --from`): the snapshot and the member
   * of it this one is a copy of. Every start restores it again.
   */
  restore: z.object({ snapshot: z.string(), member: z.string() }).optional(),
  /** The holder's boot budget for this member; `up --timeout` / `bootTimeoutMs` set it per call. */
  bootTimeoutMs: z.number().int().positive().max(3_600_000).default(DEFAULT_BOOT_TIMEOUT_MS),
  createdAt: z.string(),
});
export type MemberConfig = z.infer<typeof MemberConfigSchema>;
export type MemberConfigInput = z.input<typeof MemberConfigSchema>;
