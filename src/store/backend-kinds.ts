/** The backends a member can use; kept free of zod so the CLI can list them without loading it. */
export const BACKENDS = ['process', 'qemu'] as const;

/**
 * What a qemu member's root file system is: the small RAM guest (default), the host's root, or an
 * image built from Debian packages; the last two read-only through virtiofs with a per-member
 * writable overlay.
 */
export const ROOTFS_KINDS = ['initramfs', 'host', 'image'] as const;

/** PID 1 of a qemu member: fleetbox's own small init, or the served root's systemd (images). */
export const INIT_KINDS = ['fleetbox', 'systemd'] as const;
