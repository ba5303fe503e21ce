import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Bytes or text for the command's standard input (none: it reads end of file at once). */
  input?: string | Uint8Array;
  cwd?: string;
  /** The whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long; `timedOut` says so. */
  timeoutMs?: number;
}

export interface RunResult {
  /** null when it was killed by a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Its output, one final newline stripped (as a shell's `$(…)` would). */
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The program does not exist (ENOENT). */
  missing: boolean;
}

const stripFinalNewline = (text: string) => text.replace(/\r?\n$/, '');

/**
 * Runs a short host command and collects its output; never rejects. Node's own child_process,
 * not execa: this is on the path of every `up` (the holder's first `ip` calls), and loading
 * execa costs ~90 ms per process.
 */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, missing: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout: stripFinalNewline(Buffer.concat(out).toString()), stderr: stripFinalNewline(Buffer.concat(err).toString()), timedOut, missing });
    };
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    // A command that exits without reading its input closes the pipe under us: not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') finish(null, null, true);
      else {
        err.push(Buffer.from(error.message));
        finish(null, null, false);
      }
    });
    child.once('close', (code, signal) => finish(code, signal, false));
  });
}
