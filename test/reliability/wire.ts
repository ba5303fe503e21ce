import { connect } from 'node:net';
import fc from 'fast-check';
import { ERROR_CODES } from '../../dist/protocol/errors.js';
import { MEMBER_COMMANDS, MemberRequestSchema } from '../../dist/protocol/schemas.js';
import { MAX_LINE_BYTES } from '../../dist/protocol/version.js';
import { clusterOf } from '../../dist/store/names.js';

/** What one fuzz case sends, and where. */
export interface WireCase {
  kind: string;
  target: 'member' | 'control';
  payload: Buffer;
  /** Half-close after writing (a peer that is done talking). */
  end: boolean;
}

export interface Exchange {
  lines: string[];
  /** The holder closed the connection (as it must, sooner or later, for every case). */
  closed: boolean;
  ms: number;
}

/** Sends `payload` on a fresh connection and collects every reply line until the holder closes. */
export function exchange(path: string, payload: Buffer, end: boolean, timeoutMs = 8_000): Promise<Exchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ lines: text.split('\n').filter(Boolean), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // EPIPE/ECONNRESET: the holder hung up on an oversized or garbage line, which is allowed
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.once('connect', () => {
      socket.write(payload);
      if (end) socket.end();
    });
  });
}

export interface Trickle extends Exchange {
  /** When the last byte went out (ms from the start), or undefined if it never did. */
  sentMs: number | undefined;
  /** The longest gap between two bytes: how far this process's own timers fell behind. */
  maxGapMs: number;
}

/**
 * Writes `payload` one byte every `everyMs` (a slow-loris peer) and collects replies like
 * exchange(). The holder owes an answer only once the request is complete, so the reply budget
 * `replyWithinMs` starts at the last byte; on a loaded machine this process's own timer may fall
 * far behind `everyMs`, and that must not be charged to the holder. `limitMs` bounds the whole.
 */
export function trickle(path: string, payload: Buffer, everyMs: number, replyWithinMs: number, limitMs: number): Promise<Trickle> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    let sent = 0;
    let sentMs: number | undefined;
    let maxGapMs = 0;
    let last = Date.now();
    let ticker: NodeJS.Timeout | undefined;
    let replyTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      clearTimeout(replyTimer);
      clearInterval(ticker);
      socket.destroy();
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
      resolve({ lines, closed, ms: Date.now() - started, sentMs, maxGapMs });
    };
    const timer = setTimeout(() => finish(false), limitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.once('connect', () => {
      last = Date.now();
      ticker = setInterval(() => {
        const now = Date.now();
        maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
        if (sent >= payload.length || socket.destroyed) return;
        socket.write(payload.subarray(sent, ++sent));
        if (sent === payload.length) {
          sentMs = now - started;
          clearInterval(ticker);
          replyTimer = setTimeout(() => finish(false), replyWithinMs);
        }
      }, everyMs);
    });
  });
}

// ---- generators -------------------------------------------------------------------------------

const line = (value: unknown) => Buffer.from(JSON.stringify(value) + '\n');
const MEMBER_CMDS: readonly string[] = MEMBER_COMMANDS;

/** Requests the schemas accept (stop excluded: it would change state) and near-misses of them. */
const validObject = (cluster: string, members: string[]) =>
  fc.oneof(
    fc.constant({ cmd: 'status' }),
    fc.constantFrom(...members, 'other-1', `${cluster}x-1`).map((name) => ({ cmd: 'addmember', name })),
    fc.constantFrom('1', '2', '0', '').map((version) => ({ cmd: 'bind', version })),
    fc.constant({ cmd: 'ack' }),
  );

const anyKey = fc.oneof(fc.constantFrom('cmd', 'name', 'timeoutMs', 'version', '__proto__', 'constructor', ''), fc.string({ maxLength: 12 }));

function mutate(base: Record<string, unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    // an extra field
    fc.tuple(anyKey, fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => ({ ...base, [k]: v })),
    // a field deleted
    fc.constantFrom(...Object.keys(base)).map((k) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))),
    // cmd replaced by a near-miss or a random string
    fc.oneof(
      fc.constantFrom('STATUS', 'Status', 'status ', ' status', 'stat', 'statuss', 'bind', 'ack', 'stop', 'addmember', 'reboot', 'exec', ''),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
    ).map((cmd) => ({ ...base, cmd })),
    // the whole thing wrapped or made an array
    fc.constant([base]),
    fc.constant({ request: base }),
  );
}

const wrongTyped = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string').map((cmd) => ({ cmd })),
  fc.jsonValue({ maxDepth: 2 }).filter((v) => !(typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 600_000)).map((timeoutMs) => ({ cmd: 'stop', timeoutMs })),
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string').map((name) => ({ cmd: 'addmember', name })),
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'string').map((version) => ({ cmd: 'bind', version })),
  fc.constantFrom(-1, 0, 1.5, 600_001, 1e308, Number.MAX_SAFE_INTEGER + 2).map((timeoutMs) => ({ cmd: 'stop', timeoutMs })),
);

const names = (cluster: string) =>
  fc.oneof(
    fc.constantFrom('../etc', '..', '.', '/', 'a/b', `${cluster}-1/../x`, 'A', ' ', '', 'x'.repeat(64), `${cluster}-1\u0000`, `${cluster}\n-1`),
    fc.string({ maxLength: 70 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
  ).map((name) => ({ cmd: 'addmember', name }));

/** Every case of the property-based part, tagged with its kind for the report. */
export function wireCase(cluster: string, members: string[]): fc.Arbitrary<WireCase> {
  const target = fc.constantFrom<'member' | 'control'>('member', 'member', 'member', 'control');
  const tag = (kind: string, payload: fc.Arbitrary<Buffer>, end: fc.Arbitrary<boolean> = fc.constant(true)) =>
    fc.record({ kind: fc.constant(kind), target, payload, end });
  const valid = validObject(cluster, members);
  return fc.oneof(
    { weight: 6, arbitrary: tag('valid', valid.map(line), fc.boolean()) },
    { weight: 10, arbitrary: tag('mutated', valid.chain((v) => mutate(v as Record<string, unknown>)).map(line)) },
    { weight: 6, arbitrary: tag('wrong-typed', wrongTyped.map(line)) },
    { weight: 4, arbitrary: tag('hostile names', names(cluster).map(line)) },
    {
      weight: 6,
      arbitrary: tag(
        'truncated',
        fc.tuple(valid.map(line), fc.nat()).map(([buf, n]) => buf.subarray(0, n % buf.length)),
      ),
    },
    { weight: 8, arbitrary: tag('random bytes', fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.boolean()).map(([b, nl]) => Buffer.concat([Buffer.from(b), Buffer.from(nl ? '\n' : '')]))) },
    { weight: 5, arbitrary: tag('JSON values that are not objects', fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(null), fc.constant(0), fc.constant('')).map(line)) },
    { weight: 4, arbitrary: tag('invalid UTF-8 and control characters', fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.constantFrom('{"cmd":"', '{"cmd":"addmember","name":"', '')).map(([b, prefix]) => Buffer.concat([Buffer.from(prefix), Buffer.from(b.map((x) => x | 0x80)), Buffer.from('"}\n')]))) },
    { weight: 3, arbitrary: tag('deeply nested JSON', fc.tuple(fc.integer({ min: 1, max: 100_000 }), fc.constantFrom('[', '{"cmd":')).map(([depth, open]) => Buffer.from(`${open.repeat(depth)}${open === '[' ? ']'.repeat(depth) : '1' + '}'.repeat(depth)}\n`))) },
    { weight: 4, arbitrary: tag('pipelined lines', fc.array(fc.oneof(valid.map(line), wrongTyped.map(line), fc.constant(Buffer.from('\n')), fc.constant(Buffer.from('garbage\n'))), { minLength: 2, maxLength: 8 }).map((parts) => Buffer.concat(parts))) },
    { weight: 1, arbitrary: tag('oversized (> 1 MiB line)', fc.tuple(fc.integer({ min: MAX_LINE_BYTES + 1, max: 2 * MAX_LINE_BYTES }), fc.constantFrom('{"cmd":"status","x":"', 'a', '["')).map(([size, prefix]) => Buffer.concat([Buffer.from(prefix), Buffer.alloc(size - prefix.length, 'a'), Buffer.from('\n')]))) },
  );
}

// ---- oracle -------------------------------------------------------------------------------------

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * True when a request could change a member: any valid `stop`, and an `addmember` of a name the
 * holder would really boot (its cluster, not running yet). Such cases are left out of the fuzz
 * (they are the documented, state-changing API, exercised by the soak) — including when they
 * hide in a later line or in an unterminated tail that is flushed at EOF.
 */
export function changesState(payload: Buffer, cluster: string, running: string[]): boolean {
  return payload
    .toString('utf8')
    .split(/\r?\n/)
    .some((text) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return false;
      }
      const parsed = MemberRequestSchema.safeParse(value);
      if (!parsed.success) return false;
      if (parsed.data.cmd === 'stop') return true;
      if (parsed.data.cmd !== 'addmember') return false;
      const name = parsed.data.name;
      return NAME.test(name) && clusterOf(name) === cluster && !running.includes(name);
    });
}

/** The first request line the member socket will act on, if the payload has a complete one. */
function firstLine(payload: Buffer): string | undefined {
  const lines = payload.toString('utf8').split(/\r?\n/);
  lines.pop(); // the unterminated tail
  return lines.find((l) => l !== '');
}

export type Verdict = { ok: true } | { ok: false; why: string };

/**
 * What the holder owes a peer: it closes every connection within its deadline; every line it
 * sends is a well-formed reply; a member socket answers at most once, `ok:true` only to a valid
 * `status` with the member's own name, and a complete first line of garbage gets an error reply
 * with the right code. The control socket of a detached holder never says ok.
 */
export function judge(c: WireCase, result: Exchange, member: string): Verdict {
  if (!result.closed) return { ok: false, why: `the holder kept the connection open for ${result.ms} ms` };
  const replies: unknown[] = [];
  for (const text of result.lines) {
    try {
      replies.push(JSON.parse(text));
    } catch {
      return { ok: false, why: `reply is not JSON: ${text.slice(0, 80)}` };
    }
  }
  for (const reply of replies) {
    const r = reply as { ok?: unknown; error?: { code?: unknown; message?: unknown }; status?: { name?: unknown; state?: unknown } };
    if (r.ok === true) {
      if (c.target === 'control') return { ok: false, why: 'the control socket of a detached holder said ok' };
      if (r.status?.name !== member || r.status.state !== 'running') return { ok: false, why: `bad status reply ${JSON.stringify(r)}` };
    } else if (r.ok === false) {
      if (!(ERROR_CODES as readonly unknown[]).includes(r.error?.code) || typeof r.error?.message !== 'string') {
        return { ok: false, why: `malformed error reply ${JSON.stringify(r).slice(0, 120)}` };
      }
    } else {
      return { ok: false, why: `reply without ok: ${JSON.stringify(r).slice(0, 120)}` };
    }
  }
  if (c.target === 'control') return { ok: true };
  if (replies.length > 1) return { ok: false, why: `member socket answered ${replies.length} times on one connection` };
  const first = firstLine(c.payload);
  if (first === undefined || Buffer.byteLength(first) > MAX_LINE_BYTES) return { ok: true };
  const reply = replies[0] as { ok: boolean; error?: { code: string } } | undefined;
  const expected = expectedCode(first);
  if (expected === 'ok') return reply?.ok === true ? { ok: true } : { ok: false, why: `valid status got ${JSON.stringify(reply)}` };
  if (!reply) return { ok: false, why: `no reply to the complete line ${first.slice(0, 80)}` };
  if (reply.ok) return { ok: false, why: `ok to ${first.slice(0, 80)}` };
  if (expected !== undefined && reply.error?.code !== expected) {
    return { ok: false, why: `expected ${expected}, got ${reply.error?.code} for ${first.slice(0, 80)}` };
  }
  return { ok: true };
}

/** The code a member socket must answer a complete first line with ('ok', or undefined: any error). */
function expectedCode(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'bad_request';
  }
  const cmd = typeof value === 'object' && value !== null ? (value as { cmd?: unknown }).cmd : undefined;
  if (typeof cmd === 'string' && !MEMBER_CMDS.includes(cmd)) return 'unknown_command';
  const parsed = MemberRequestSchema.safeParse(value);
  if (!parsed.success) return 'bad_request';
  if (parsed.data.cmd === 'status') return 'ok';
  // addmember of a name the holder refuses: invalid_name, bad_request (other cluster) or already_running
  return undefined;
}
