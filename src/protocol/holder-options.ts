import { z } from 'zod';

/** The holder's health loop: poll period, deadline of one check, heartbeat age that means wedged. */
export const HealthSettingsSchema = z.object({
  /** false: no checks and no heartbeat (`status` then shows the members amber, no_heartbeat). */
  enabled: z.boolean(),
  /** How often checks run and the heartbeat is written. */
  pollMs: z.number().int().min(50).max(600_000),
  /** Deadline of one check; a check that misses it is a failing check. */
  checkTimeoutMs: z.number().int().min(10).max(600_000),
  /** A live holder whose heartbeat is older than this is stale (wedged). */
  staleAfterMs: z.number().int().min(100).max(3_600_000),
});
export type HealthSettings = z.infer<typeof HealthSettingsSchema>;

/**
 * FLEETBOX_OPTS: everything the client tells a holder it spawns (validated on both sides). It is
 * the holder's only source of settings: what a user sets in the environment of `fleetbox up` (or
 * of a test run) is read by the client, here, and handed over; the holder reads no environment
 * variable of its own except test-only crash points.
 */
export const HolderOptionsSchema = z.object({
  home: z.string().min(1),
  mode: z.enum(['detached', 'bound']),
  /** Bound mode: the client's PID; the holder ends itself and its members when that process is gone. */
  parentPid: z.number().int().positive().optional(),
  /** Default graceful-stop budget for members; a `stop` request may override it. */
  stopTimeoutMs: z.number().int().positive().default(10_000),
  /** How often the bound holder checks that its parent is still the one that spawned it. */
  parentPollMs: z.number().int().positive().default(200),
  health: HealthSettingsSchema.default({ enabled: true, pollMs: 2_000, checkTimeoutMs: 1_000, staleAfterMs: 10_000 }),
  /** Forces the accelerator of VM members instead of the cached probe's verdict (FLEETBOX_ACCEL). */
  accel: z.enum(['kvm', 'tcg']).optional(),
  /** false: commands in VM members go through the guest agent only, not the exec ports (FLEETBOX_EXEC_PORTS=0). */
  execPorts: z.boolean().optional(),
  /**
   * A fork of a snapshot (`up --from`): the subnet and addresses its members had, given again in
   * the fork's own namespace when its network is first made (a saved guest keeps its address).
   */
  network: z.object({ subnet: z.string().regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}$/), addresses: z.record(z.string(), z.string()) }).optional(),
});
export type HolderOptions = z.infer<typeof HolderOptionsSchema>;
export type HolderOptionsInput = z.input<typeof HolderOptionsSchema>;

export const RUNNER_FLAG = '--fleetbox-runner';

function envInt(env: NodeJS.ProcessEnv, key: string, min: number, max: number): number | undefined {
  const raw = env[key];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

/**
 * Health settings from the user's environment: FLEETBOX_HEALTH_POLL_MS (default 2000),
 * FLEETBOX_HEALTH_TIMEOUT_MS (default 1000, at most the poll period), FLEETBOX_HEALTH_STALE_MS
 * (default 5 × poll, at least 5 s), FLEETBOX_HEALTH=off. A value out of range is ignored. The
 * stale threshold is kept above two poll periods plus a check deadline, so a healthy but busy
 * holder is never called stale.
 */
export function healthSettings(env: NodeJS.ProcessEnv): HealthSettings {
  const pollMs = envInt(env, 'FLEETBOX_HEALTH_POLL_MS', 50, 600_000) ?? 2_000;
  const checkTimeoutMs = envInt(env, 'FLEETBOX_HEALTH_TIMEOUT_MS', 10, 600_000) ?? Math.min(1_000, Math.max(pollMs, 100));
  const floor = 2 * pollMs + checkTimeoutMs;
  const staleAfterMs = Math.max(envInt(env, 'FLEETBOX_HEALTH_STALE_MS', 100, 3_600_000) ?? Math.max(5 * pollMs, 5_000), floor);
  return { enabled: env.FLEETBOX_HEALTH !== 'off', pollMs, checkTimeoutMs, staleAfterMs };
}

/** The holder settings a user sets through the environment of the command that spawns a holder. */
export function holderSettingsFromEnv(env: NodeJS.ProcessEnv): Pick<HolderOptionsInput, 'health' | 'accel' | 'execPorts'> {
  const accel = env.FLEETBOX_ACCEL;
  return { health: healthSettings(env), ...((accel === 'kvm' || accel === 'tcg') && { accel }), ...(env.FLEETBOX_EXEC_PORTS === '0' && { execPorts: false }) };
}
