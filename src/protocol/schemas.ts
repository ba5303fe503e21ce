import { z } from 'zod';
import { ERROR_CODES } from './errors.js';

export const MEMBER_STATES = ['downloading', 'starting', 'running', 'stopping', 'stopped', 'error'] as const;
export const MemberStateSchema = z.enum(MEMBER_STATES);
export type MemberState = z.infer<typeof MemberStateSchema>;

/** What a holder says about one member; also the shape of state.json on disk. */
export const MemberStatusSchema = z.object({
  name: z.string(),
  /** PID of the member's own process (VM or plain process); null when it has none. */
  pid: z.number().int().nullable(),
  running: z.boolean(),
  ip: z.string().nullable(),
  state: MemberStateSchema,
  error: z.string().optional(),
  /** ISO time of the last state change. */
  since: z.string(),
  /** Free-form progress of long work (image download, build), shown by the CLI. */
  progress: z.string().optional(),
});
export type MemberStatus = z.infer<typeof MemberStatusSchema>;

// ---- requests -------------------------------------------------------------------------------

/**
 * Every member request may say by when (epoch ms) the holder must have taken it up. A client
 * that gave up on a stopped or wedged holder has its queued request refused when the holder
 * resumes, instead of a `stop` nobody waits for any more running minutes later.
 */
const expiresAt = z.number().int().positive().optional();
export const StatusRequestSchema = z.object({ cmd: z.literal('status'), expiresAt }).strict();
export const StopRequestSchema = z
  .object({ cmd: z.literal('stop'), timeoutMs: z.number().int().positive().max(600_000).optional(), expiresAt })
  .strict();
export const AddMemberRequestSchema = z.object({ cmd: z.literal('addmember'), name: z.string(), expiresAt }).strict();
export const ForwardRequestSchema = z
  .object({ cmd: z.literal('forward'), port: z.number().int().min(1).max(65535), expiresAt })
  .strict();
/** Longest command text (a shell script given inline); bigger scripts are copied in and run. */
export const MAX_EXEC_COMMAND = 256 * 1024;
/** Largest standard input carried in an exec request (it travels base64 in one line). */
export const MAX_EXEC_INPUT = 512 * 1024;
export const ExecRequestSchema = z
  .object({
    cmd: z.literal('exec'),
    command: z.string().min(1).max(MAX_EXEC_COMMAND),
    /** base64 */
    input: z.string().max(Math.ceil(MAX_EXEC_INPUT / 3) * 4).optional(),
    timeoutMs: z.number().int().positive().max(86_400_000),
    expiresAt,
  })
  .strict();
/** Bytes of a file one `write` request carries or one `read` reply returns (base64 in one line). */
export const MAX_FILE_PIECE = 512 * 1024;
const guestPath = z.string().min(1).max(4096).startsWith('/');
export const WriteRequestSchema = z
  .object({ cmd: z.literal('write'), path: guestPath, data: z.string().max(Math.ceil(MAX_FILE_PIECE / 3) * 4), append: z.boolean(), expiresAt })
  .strict();
export const ReadRequestSchema = z
  .object({ cmd: z.literal('read'), path: guestPath, offset: z.number().int().min(0), count: z.number().int().min(1).max(MAX_FILE_PIECE), expiresAt })
  .strict();
/** Egress shaping of one member (netem in the guest): delay ± jitter, loss, rate. */
export const RATE_PATTERN = /^\d+(\.\d+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$/i;
export const MAX_DELAY_MS = 60_000;
export const NetworkShapeSchema = z
  .object({
    delayMs: z.number().min(0).max(MAX_DELAY_MS),
    jitterMs: z.number().min(0).max(MAX_DELAY_MS),
    lossPercent: z.number().min(0).max(100),
    rate: z.string().regex(RATE_PATTERN).optional(),
  })
  .strict();
export type NetworkShape = z.infer<typeof NetworkShapeSchema>;
/** A fault in force in a cluster (fault injection for testing distributed systems). */
export const FaultSchema = z.discriminatedUnion('kind', [
  z.object({ id: z.string(), kind: z.literal('partition'), sides: z.array(z.array(z.string())), since: z.string() }),
  z.object({ id: z.string(), kind: z.literal('isolate'), member: z.string(), since: z.string() }),
  z.object({ id: z.string(), kind: z.literal('pause'), member: z.string(), since: z.string() }),
  z.object({
    id: z.string(),
    kind: z.literal('delay'),
    member: z.string(),
    shape: NetworkShapeSchema,
    /** Only what the member sends to these members is shaped (none: everything it sends). */
    to: z.array(z.string()).optional(),
    since: z.string(),
  }),
]);
export type Fault = z.infer<typeof FaultSchema>;
export const FaultRequestSchema = z
  .object({
    cmd: z.literal('fault'),
    op: z.enum(['partition', 'isolate', 'delay', 'pause', 'resume', 'crash', 'heal', 'list']),
    /** partition: the sides, each a list of member names. */
    sides: z.array(z.array(z.string()).min(1).max(253)).min(2).max(16).optional(),
    /** isolate, pause, resume: the member; heal: only faults touching these (none: all). */
    members: z.array(z.string()).max(253).optional(),
    /** delay: how the members' traffic is shaped, and toward whom (none: everyone). */
    shape: NetworkShapeSchema.optional(),
    to: z.array(z.string()).max(253).optional(),
    expiresAt,
  })
  .strict();
/**
 * Saves every member of the holder's cluster into the snapshot folder being made (a name under
 * the store's snapshots/, never a path: the holder writes nowhere else). All members are paused
 * for the save, so the snapshot is one moment of the whole cluster, and resumed after.
 */
export const SnapshotRequestSchema = z
  .object({ cmd: z.literal('snapshot'), folder: z.string().regex(/^\.partial-[a-z0-9][a-z0-9.-]{0,120}$/), expiresAt })
  .strict();
export const BindRequestSchema = z.object({ cmd: z.literal('bind'), version: z.string() }).strict();
export const AckRequestSchema = z.object({ cmd: z.literal('ack') }).strict();

export const MemberRequestSchema = z.discriminatedUnion('cmd', [
  StatusRequestSchema,
  StopRequestSchema,
  AddMemberRequestSchema,
  ForwardRequestSchema,
  ExecRequestSchema,
  WriteRequestSchema,
  ReadRequestSchema,
  FaultRequestSchema,
  SnapshotRequestSchema,
]);
export type MemberRequest = z.infer<typeof MemberRequestSchema>;
export const MEMBER_COMMANDS = ['status', 'stop', 'addmember', 'forward', 'exec', 'write', 'read', 'fault', 'snapshot'] as const;

export const ControlRequestSchema = z.discriminatedUnion('cmd', [BindRequestSchema, AckRequestSchema]);
export const CONTROL_COMMANDS = ['bind', 'ack'] as const;

// ---- replies --------------------------------------------------------------------------------

export const ErrorReplySchema = z.object({
  ok: z.literal(false),
  error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }),
});
export type ErrorReply = z.infer<typeof ErrorReplySchema>;

export const StatusReplySchema = z.object({ ok: z.literal(true), status: MemberStatusSchema });
export const StopReplySchema = z.object({ ok: z.literal(true), status: MemberStatusSchema });
export const AddMemberReplySchema = z.object({ ok: z.literal(true), status: MemberStatusSchema });
/** A loopback port on the host that the holder pipes to `port` of the member, until it stops. */
export const ForwardReplySchema = z.object({
  ok: z.literal(true),
  forward: z.object({ host: z.string(), port: z.number().int(), memberPort: z.number().int() }),
});
/** An exec's output arrives in parts (base64, at most EXEC_PART_BYTES each), then its end. */
export const EXEC_PART_BYTES = 256 * 1024;
export const ExecPartSchema = z.object({
  ok: z.literal(true),
  output: z.object({ stream: z.enum(['stdout', 'stderr']), data: z.string() }),
});
export const ExecReplySchema = z.object({
  ok: z.literal(true),
  exec: z.object({ exitCode: z.number().int(), truncated: z.boolean() }),
});
/** The faults in force after the request (heal: also those it healed). */
export const FaultReplySchema = z.object({ ok: z.literal(true), faults: z.array(FaultSchema), healed: z.array(FaultSchema).optional() });
export const WriteReplySchema = z.object({ ok: z.literal(true) });
export const ReadReplySchema = z.object({ ok: z.literal(true), read: z.object({ data: z.string(), eof: z.boolean() }) });
/** What `snapshot` saved: each member's bytes on disk, and how long the cluster stood paused. */
export const SnapshotReplySchema = z.object({
  ok: z.literal(true),
  snapshot: z.object({ members: z.array(z.object({ name: z.string(), bytes: z.number().int() })), pausedMs: z.number() }),
});
export const BindReplySchema = z.object({
  ok: z.literal(true),
  version: z.string(),
  pid: z.number().int(),
  instance: z.string(),
});
export const AckReplySchema = z.object({ ok: z.literal(true) });

