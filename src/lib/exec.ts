import { randomBytes } from 'node:crypto';
import { terminalCommand, type TerminalCommand } from '../backend/terminal.js';
import { FleetboxError } from '../protocol/errors.js';
import type { ExecTarget, HolderTarget } from './target.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  /** Whole-command budget; on expiry the command is killed and `exec_timeout` thrown. */
  timeoutMs?: number;
  /** Bytes written to the command's standard input. */
  input?: string | Uint8Array;
}

export type { ExecTarget };

/** The host command that gives the user's terminal to a member (interactive `fleetbox ssh`). */
export function memberCommand(target: ExecTarget, shellCommand: string | undefined, options: { tty: boolean }): Promise<TerminalCommand> {
  return terminalCommand({ store: target.store, config: target.config, ip: target.ip, namespace: target.network?.namespace ?? null }, shellCommand, options);
}

/** What the holder's exec replies say (the request/reply shapes live in src/protocol). */
interface ExecOutcome {
  stdout: Buffer[];
  stderr: Buffer[];
}

/** Sends one exec request to the member's holder; output parts are gathered as they stream in. */
async function holderExec(target: HolderTarget, command: string, timeoutMs: number, input: Buffer | undefined): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number; truncated: boolean }> {
  const { request } = await import('../control/client.js');
  const { ExecPartSchema, ExecReplySchema } = await import('../protocol/schemas.js');
  const outcome: ExecOutcome = { stdout: [], stderr: [] };
  const reply = await request(
    target.store.memberSocketPath(target.config.name),
    { cmd: 'exec', command, timeoutMs, ...(input && input.length > 0 && { input: input.toString('base64') }) },
    ExecReplySchema,
    {
      // The holder ends the command at timeoutMs; the margin covers the reply's trip.
      timeoutMs: timeoutMs + 10_000,
      startWithinMs: 10_000,
      parts: {
        schema: ExecPartSchema,
        onPart(value) {
          const part = value as { output: { stream: 'stdout' | 'stderr'; data: string } };
          outcome[part.output.stream].push(Buffer.from(part.output.data, 'base64'));
        },
      },
    },
  );
  return { stdout: Buffer.concat(outcome.stdout), stderr: Buffer.concat(outcome.stderr), ...reply.exec };
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/**
 * Runs a shell command on a member and collects its output: `{ stdout, stderr, exitCode }`.
 * The member's holder runs it (in a qemu guest through its agent, with or without a network).
 * An input larger than one request carries is first written to a file in the member, piece by piece,
 * and the command reads it from there.
 */
export async function execOn(target: HolderTarget, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const result = await execBytes(target, command, options);
  return { stdout: result.stdout.toString(), stderr: result.stderr.toString(), exitCode: result.exitCode };
}

/** execOn with the output as bytes, as the command wrote them. */
export async function execBytes(target: HolderTarget, command: string, options: ExecOptions = {}): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { MAX_EXEC_INPUT } = await import('../protocol/schemas.js');
  const input = options.input === undefined ? undefined : Buffer.from(options.input);
  let result;
  if (!input || input.length <= MAX_EXEC_INPUT) {
    result = await holderExec(target, command, timeoutMs, input);
  } else {
    const deadline = Date.now() + timeoutMs;
    const staged = `/tmp/.fleetbox-stdin.${randomBytes(8).toString('hex')}`;
    const left = () => {
      const ms = deadline - Date.now();
      if (ms <= 0) throw new FleetboxError('exec_timeout', `command on ${target.config.name} did not finish within ${timeoutMs} ms: ${command.slice(0, 80)}`);
      return ms;
    };
    try {
      left();
      const { writeMemberFile } = await import('./member-files.js');
      await writeMemberFile(target, staged, input);
      // The shell takes the staged file as its stdin and unlinks it before the command runs.
      result = await holderExec(target, `exec < ${quote(staged)} && rm -f ${quote(staged)}\n${command}`, left(), undefined);
    } catch (error) {
      await holderExec(target, `rm -f ${quote(staged)}`, 10_000, undefined).catch(() => undefined);
      throw error;
    }
  }
  if (result.truncated) {
    throw new FleetboxError('io', `the output of a command on ${target.config.name} was over 16 MiB and was cut; write it to a file in the member and copy that out: ${command.slice(0, 80)}`);
  }
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
}
