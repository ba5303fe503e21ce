import { z } from 'zod';

/** FLEETBOX_OPTS: what the client tells a holder it spawns (validated on both sides). */
export const HolderOptionsSchema = z.object({
  home: z.string().min(1),
  mode: z.enum(['detached', 'bound']),
  /** Default graceful-stop budget for members; a `stop` request may override it. */
  stopTimeoutMs: z.number().int().positive().default(10_000),
  /** How often the bound holder checks that its parent is still the one that spawned it. */
  parentPollMs: z.number().int().positive().default(200),
});
export type HolderOptions = z.infer<typeof HolderOptionsSchema>;
export type HolderOptionsInput = z.input<typeof HolderOptionsSchema>;

export const RUNNER_FLAG = '--fleetbox-runner';
