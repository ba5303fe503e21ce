/**
 * The backends a member can use: the registry. Each name is a folder `src/backend/<name>/`
 * (see backend/index.ts). Kept free of zod so the CLI can list them without loading it.
 */
export const BACKENDS = ['process', 'qemu'] as const;
/** What a member is when nobody says: a real VM. */
export const DEFAULT_BACKEND: BackendKind = 'qemu';
/** Backends whose members are machines with a root file system of their own (--rootfs, --share). */
export const MACHINE_BACKENDS: ReadonlySet<string> = new Set<BackendKind>(['qemu']);

/**
 * What a qemu member's root file system is: the small RAM guest (default), the host's root, or an
 * image built from Debian packages; the last two read-only through virtiofs with a per-member
 * writable overlay.
 */
export const ROOTFS_KINDS = ['initramfs', 'host', 'image'] as const;

/** PID 1 of a qemu member: fleetbox's own small init, or the served root's systemd (images). */
export const INIT_KINDS = ['fleetbox', 'systemd'] as const;

export type BackendKind = (typeof BACKENDS)[number];
