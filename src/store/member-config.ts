import { z } from 'zod';

import { BACKENDS } from './backend-kinds.js';

export { BACKENDS };
export const BackendKindSchema = z.enum(BACKENDS);
export type BackendKind = z.infer<typeof BackendKindSchema>;

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
  bootTimeoutMs: z.number().int().positive().default(60_000),
  createdAt: z.string(),
});
export type MemberConfig = z.infer<typeof MemberConfigSchema>;
export type MemberConfigInput = z.input<typeof MemberConfigSchema>;
