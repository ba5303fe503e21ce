import { z } from 'zod';
import { MEMBER_STATES } from './schemas.js';
import { CHECK_STATUSES, HEALTH_KINDS, LEVELS } from './health-levels.js';

/**
 * The shapes of fleet health, defined once. The local `status` path never loads this module at
 * run time (zod costs ~60 ms of CLI start); it imports the inferred types only. Remote snapshots,
 * the heartbeat file read by tests and the docs are validated against it.
 */

/** One checker's verdict on one member (or on the holder as a whole). */
export const CheckResultSchema = z.object({
  name: z.string(),
  status: z.enum(CHECK_STATUSES),
  detail: z.string(),
  /** How long the check took; a check cut off by its timeout reports the timeout. */
  durationMs: z.number().nonnegative(),
  /** ISO time the check finished. */
  at: z.string(),
});
export type CheckResult = z.infer<typeof CheckResultSchema>;

/**
 * clusters/<cluster>/health.json: the holder's heartbeat, rewritten every poll period. A holder
 * whose process is alive but whose heartbeat is older than `staleAfterMs` is wedged.
 */
export const HeartbeatFileSchema = z.object({
  version: z.literal(1),
  cluster: z.string(),
  holder: z.object({ pid: z.number().int(), startTime: z.string(), instance: z.string() }),
  /** ISO time of this write. */
  heartbeat: z.string(),
  /** Increases by one per write; lets a reader tell a live loop from a repeated file. */
  seq: z.number().int().nonnegative(),
  pollMs: z.number().int().positive(),
  staleAfterMs: z.number().int().positive(),
  /** Check rounds completed so far (a hung checker must not stop this from growing). */
  rounds: z.number().int().nonnegative(),
  /** Holder-wide checks (disk space of the store). */
  checks: z.array(CheckResultSchema),
  members: z.record(z.string(), z.object({ checkedAt: z.string(), checks: z.array(CheckResultSchema) })),
});
export type HeartbeatFile = z.infer<typeof HeartbeatFileSchema>;

export const LevelSchema = z.enum(LEVELS);

export const IssueSchema = z.object({
  level: z.enum(['red', 'amber']),
  kind: z.enum(HEALTH_KINDS),
  /** What the issue is about: a member, a cluster or a host. */
  subject: z.string(),
  host: z.string().optional(),
  message: z.string(),
  action: z.string().nullable(),
});
export type Issue = z.infer<typeof IssueSchema>;

export const MemberHealthSchema = z.object({
  name: z.string(),
  cluster: z.string(),
  /** Set on rows merged from other machines' dashboards (`status --hosts`). */
  host: z.string().optional(),
  /** Rolled-up colour of this member; `grey` is a member stopped on purpose. */
  status: LevelSchema,
  /** Why it has that colour (stale, error, holder_gone, starting, healthy, …). */
  health: z.enum(HEALTH_KINDS),
  /** One line a person can act on; null when healthy. */
  problem: z.string().nullable(),
  action: z.string().nullable(),
  state: z.enum(MEMBER_STATES),
  backend: z.string(),
  ip: z.string().nullable(),
  pid: z.number().int().nullable(),
  running: z.boolean(),
  holderPid: z.number().int().nullable(),
  /** `holder`: its holder answered within the timeout; `disk`: the last state on disk. */
  source: z.enum(['holder', 'disk']),
  since: z.string(),
  createdAt: z.string().nullable(),
  error: z.string().optional(),
  progress: z.string().optional(),
  lastHeartbeat: z.string().nullable(),
  heartbeatAgeMs: z.number().nullable(),
  staleAfterMs: z.number().nullable(),
  checks: z.array(CheckResultSchema),
});
export type MemberHealth = z.infer<typeof MemberHealthSchema>;

export const ClusterHealthSchema = z.object({
  name: z.string(),
  host: z.string().optional(),
  status: LevelSchema,
  backend: z.string(),
  members: z.number().int(),
  running: z.number().int(),
  holder: z
    .object({
      pid: z.number().int(),
      lastHeartbeat: z.string().nullable(),
      heartbeatAgeMs: z.number().nullable(),
      staleAfterMs: z.number().nullable(),
    })
    .nullable(),
  /** Holder-wide checks (disk space of the store). */
  checks: z.array(CheckResultSchema),
});
export type ClusterHealth = z.infer<typeof ClusterHealthSchema>;

/** Something that kept part of the view from being complete: a member or host that did not answer. */
export const WarningSchema = z.object({ subject: z.string(), message: z.string() });
export type Warning = z.infer<typeof WarningSchema>;

export const HostInfoSchema = z.object({
  host: z.string(),
  ok: z.boolean(),
  /** Estimated offset of that host's clock from ours (positive: it is ahead), median of 3 samples. */
  skewMs: z.number().nullable(),
  rttMs: z.number().nullable(),
  error: z.string().optional(),
});
export type HostInfo = z.infer<typeof HostInfoSchema>;

export const FleetSnapshotSchema = z.object({
  schema: z.literal('fleetbox.fleet/v1'),
  generatedAt: z.string(),
  summary: z.object({
    status: z.enum(['red', 'amber', 'green']),
    message: z.string(),
    /** Most urgent first; at most `issueLimit` of them, `hiddenIssues` says how many were cut. */
    issues: z.array(IssueSchema),
    hiddenIssues: z.number().int().nonnegative(),
    suggestedNextAction: z.string().nullable(),
    counts: z.object({
      clusters: z.number().int(),
      members: z.number().int(),
      red: z.number().int(),
      amber: z.number().int(),
      green: z.number().int(),
      grey: z.number().int(),
      stale: z.number().int(),
    }),
  }),
  clusters: z.array(ClusterHealthSchema),
  members: z.array(MemberHealthSchema),
  warnings: z.array(WarningSchema),
  /** Present on merged multi-host snapshots. */
  hosts: z.array(HostInfoSchema).optional(),
});
export type FleetSnapshot = z.infer<typeof FleetSnapshotSchema>;
