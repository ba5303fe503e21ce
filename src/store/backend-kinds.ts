/** The backends a member can use; kept free of zod so the CLI can list them without loading it. */
export const BACKENDS = ['process', 'qemu'] as const;
