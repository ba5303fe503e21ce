import type { Server, Socket } from 'node:net';
import { FleetboxError, toFleetboxError } from '../protocol/errors.js';
import { readLines, writeLine } from '../protocol/framing.js';
import {
  EXEC_PART_BYTES,
  MEMBER_COMMANDS,
  MemberRequestSchema,
  type ErrorReply,
  type Fault,
  type MemberRequest,
  type MemberStatus,
  type NetworkShape,
} from '../protocol/schemas.js';
import type { MemberExecOptions, MemberExecResult } from '../backend/types.js';
import type { Logger } from '../host/logger.js';
import { listenUnix } from './socket-server.js';

type ExecRequest = Extract<MemberRequest, { cmd: 'exec' }>;

/** A `fault` request as the holder takes it; `member` in the service call is the socket's member. */
export interface FaultCall {
  op: string;
  sides?: string[][];
  members?: string[];
  shape?: NetworkShape;
  to?: string[];
}

/** What a member socket serves, and no more (the holder implements it). */
export interface MemberService {
  readonly log: Logger;
  statusOf(name: string): MemberStatus;
  stopMember(name: string, timeoutMs?: number): Promise<MemberStatus>;
  addMember(name: string): Promise<MemberStatus>;
  forward(name: string, port: number): Promise<{ host: string; port: number; memberPort: number }>;
  exec(name: string, command: string, options: MemberExecOptions): Promise<MemberExecResult>;
  fault(member: string, request: FaultCall): Promise<{ faults: Fault[]; healed?: Fault[] }>;
  writeFile(name: string, path: string, data: Buffer, append: boolean): Promise<void>;
  readFile(name: string, path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }>;
  snapshot(folder: string): Promise<{ members: { name: string; bytes: number }[]; pausedMs: number }>;
}

/** A connection that has not sent its request by then is dropped (slow or stuck peers). */
const REQUEST_IDLE_MS = 10_000;

export function errorReply(error: unknown): ErrorReply {
  const failure = toFleetboxError(error);
  // Details of an internal failure stay in the holder log; the peer gets the code.
  const message = failure.code === 'internal' ? 'internal error (see the holder log)' : failure.message;
  return { ok: false, error: { code: failure.code, message } };
}

/** Parses one request; the error names the problem so a peer can fix its request. */
export function parseMemberRequest(value: unknown): MemberRequest {
  const cmd = typeof value === 'object' && value !== null ? (value as { cmd?: unknown }).cmd : undefined;
  if (typeof cmd === 'string' && !(MEMBER_COMMANDS as readonly string[]).includes(cmd)) {
    throw new FleetboxError('unknown_command', `unknown command ${JSON.stringify(cmd.slice(0, 40))}; expected one of ${MEMBER_COMMANDS.join(', ')}`);
  }
  const parsed = MemberRequestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new FleetboxError('bad_request', `invalid request${where}: ${issue?.message ?? 'unknown problem'}`);
  }
  return parsed.data;
}

async function handle(holder: MemberService, member: string, request: MemberRequest) {
  switch (request.cmd) {
    case 'status':
      return { ok: true, status: holder.statusOf(member) };
    case 'stop':
      return { ok: true, status: await holder.stopMember(member, request.timeoutMs) };
    case 'addmember':
      return { ok: true, status: await holder.addMember(request.name) };
    case 'forward':
      return { ok: true, forward: await holder.forward(member, request.port) };
    case 'exec':
      throw new FleetboxError('internal', 'exec is streamed, not answered in one reply');
    case 'fault':
      return { ok: true, ...(await holder.fault(member, request)) };
    case 'write':
      await holder.writeFile(member, request.path, Buffer.from(request.data, 'base64'), request.append);
      return { ok: true };
    case 'snapshot':
      return { ok: true, snapshot: await holder.snapshot(request.folder) };
    case 'read': {
      const { data, eof } = await holder.readFile(member, request.path, request.offset, request.count);
      return { ok: true, read: { data: data.toString('base64'), eof } };
    }
  }
}

/** Runs an exec request and streams its output in parts, then its end. */
async function streamExec(holder: MemberService, member: string, request: ExecRequest, socket: Socket): Promise<void> {
  const result = await holder.exec(member, request.command, {
    timeoutMs: request.timeoutMs,
    ...(request.input !== undefined && { input: Buffer.from(request.input, 'base64') }),
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    const bytes = result[stream];
    for (let at = 0; at < bytes.length; at += EXEC_PART_BYTES) {
      if (!writeLine(socket, { ok: true, output: { stream, data: bytes.subarray(at, at + EXEC_PART_BYTES).toString('base64') } })) {
        if (socket.destroyed) return;
        await new Promise((resolve) => {
          socket.once('drain', resolve);
          socket.once('close', resolve);
        });
      }
    }
  }
  writeLine(socket, { ok: true, exec: { exitCode: result.exitCode, truncated: result.truncated } });
}

/** One listening socket per member; one request per connection, answered, then closed. */
export function serveMemberSocket(holder: MemberService, socketPath: string, member: string): Promise<Server> {
  return listenUnix(socketPath, (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    // A deadline for the whole request, not an idle timer: a slow-loris peer sending a byte now
    // and then would otherwise hold the connection (and a descriptor) for ever.
    const deadline = setTimeout(() => socket.destroy(), REQUEST_IDLE_MS);
    socket.once('close', () => clearTimeout(deadline));
    const reader = readLines(socket);
    let answered = false;
    reader.onError((error) => {
      // One request per connection: once it is taken, what the peer sends after it is ignored,
      // so the reply to the request is never replaced by an error about the bytes behind it.
      if (answered) return;
      writeLine(socket, { ok: false, error: { code: 'bad_request', message: error.message } });
      // The peer may still be sending; close once the reply is flushed instead of waiting for it.
      socket.destroySoon();
    });
    reader.onValue((value) => {
      if (answered) return;
      answered = true;
      clearTimeout(deadline);
      let request: MemberRequest;
      try {
        request = parseMemberRequest(value);
      } catch (error) {
        writeLine(socket, errorReply(error));
        socket.end();
        return;
      }
      if (request.expiresAt !== undefined && Date.now() > request.expiresAt) {
        // The client gave up on us (we were stopped or starved); acting now would surprise it.
        holder.log.warn('request_expired', { member, cmd: request.cmd, lateMs: Date.now() - request.expiresAt });
        writeLine(socket, errorReply(new FleetboxError('busy', `${request.cmd} arrived after its deadline; the client gave up, nothing was done`)));
        socket.end();
        return;
      }
      // An exec runs as long as the command does: only its own budget limits it.
      const work = request.cmd === 'exec' ? streamExec(holder, member, request, socket) : handle(holder, member, request).then((reply) => void writeLine(socket, reply));
      work
        .catch((error: unknown) => {
          holder.log.warn('request_failed', { member, cmd: request.cmd, message: String(error) });
          writeLine(socket, errorReply(error));
        })
        .finally(() => socket.end());
    });
  });
}
