import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { FleetboxError, toFleetboxError } from '../../protocol/errors.js';
import type { Store } from '../../store/layout.js';
import type { MemberRef } from '../../store/members.js';
import { seconds } from '../numbers.js';
import { notice, openStore, printJson } from '../output.js';

/** Exit status for a member that could not run the command at all (as ssh uses 255). */
const UNREACHABLE_EXIT = 255;

async function interactive(store: Store, ref: MemberRef, command: string | undefined, tty: boolean): Promise<number> {
  const { execTarget } = await import('../../lib/target.js');
  const { memberCommand } = await import('../../lib/exec.js');
  const target = await execTarget(store, ref);
  const { file, args, env } = await memberCommand(target, command, { tty });
  const child = spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return new Promise<number>((resolve, reject) => {
    child.once('error', (error) => reject(new FleetboxError('unreachable', `cannot run ${file}: ${error.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** One command on one member through its holder (an exec port or the guest agent for qemu): output when it ends. */
async function runOnce(store: Store, ref: MemberRef, command: string, timeoutMs: number, stdin: boolean): Promise<number> {
  const { execTarget } = await import('../../lib/target.js');
  const { execBytes } = await import('../../lib/exec.js');
  const input = stdin ? await readStdin() : undefined;
  let result;
  try {
    result = await execBytes(await execTarget(store, ref), command, { timeoutMs, ...(input && { input }) });
  } catch (error) {
    if (toFleetboxError(error).code !== 'exec_timeout') throw error;
    notice(`fleetbox: ${toFleetboxError(error).message}`);
    return UNREACHABLE_EXIT;
  }
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  return result.exitCode;
}

async function fanOut(store: Store, refs: MemberRef[], command: string, timeoutMs: number, json: boolean): Promise<number> {
  const { execTarget } = await import('../../lib/target.js');
  const { execOn } = await import('../../lib/exec.js');
  const results = await Promise.all(
    refs.map(async (ref) => {
      try {
        const target = await execTarget(store, ref);
        return { name: ref.name, ...(await execOn(target, command, { timeoutMs })) };
      } catch (error) {
        const failure = toFleetboxError(error);
        return { name: ref.name, stdout: '', stderr: '', exitCode: UNREACHABLE_EXIT, warning: failure.message, code: failure.code };
      }
    }),
  );
  if (json) {
    printJson(results);
  } else {
    const width = Math.max(...refs.map((r) => r.name.length));
    for (const r of results) {
      const prefix = r.name.padEnd(width);
      for (const line of r.stdout.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)) process.stdout.write(`${prefix} | ${line}\n`);
      for (const line of r.stderr.split('\n').filter(Boolean)) process.stderr.write(`${prefix} ! ${line}\n`);
      if ('warning' in r && r.warning) notice(`fleetbox: warning: ${r.name}: ${r.warning}`);
    }
  }
  return Math.max(0, ...results.map((r) => r.exitCode));
}

export function sshCommand(): Command {
  return new Command('ssh')
    .description('run a command on a member (or with --all on every member of a cluster); no command: interactive shell')
    .argument('<name>', 'member (web-1), or cluster (web) with --all')
    .argument('[command...]', 'the command, after --')
    .option('--all', 'every running member of the cluster, concurrently; output lines prefixed by member name')
    .option('-t, --tty', 'run the command on a terminal over SSH (live output, interactive programs)')
    .option('-i, --stdin', 'pass this command\'s standard input to the command (read to its end first)')
    .option('--timeout <seconds>', 'budget of the command; it is killed after (default: 60 with --all, none without)', seconds(86_400))
    .option('--json', 'with --all: print [{name, stdout, stderr, exitCode}] as JSON')
    .addHelpText(
      'after',
      `
A command runs through the member's holder (in a VM: an exec port, else its guest agent; no
network needed): its output is printed when it ends and its exit code passes through. -t runs
it on a terminal over SSH instead (output as it comes, interactive programs). Without a
command: an SSH login shell.

Examples:
  $ fleetbox ssh web-1 -- uname -a          the exit code passes through
  $ echo hi | fleetbox ssh web-1 -i -- cat  stdin passed with -i
  $ fleetbox ssh web-1                      interactive shell
  $ fleetbox ssh web --all -- cat /proc/loadavg`,
    )
    .action(async (name: string, rawArgv: string[], opts: { all?: boolean; tty?: boolean; stdin?: boolean; timeout?: number; json?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { getStatus } = await import('../../control/status.js');
      const { resolveOneMember, resolveTargets } = await import('../../control/targets.js');
      const argv = rawArgv[0] === '--' ? rawArgv.slice(1) : rawArgv;
      const command = argv.length > 0 ? argv.join(' ') : undefined;
      const store = openStore();
      const refs = resolveTargets(store, [name]);
      if (opts.all) {
        if (command === undefined) throw new FleetboxError('usage', '--all needs a command after --');
        const views = await Promise.all(refs.map((ref) => getStatus(store, ref)));
        const running = refs.filter((_, i) => views[i]?.state === 'running');
        for (const view of views) if (view.state !== 'running') notice(`fleetbox: warning: ${view.name} is ${view.state}; skipped`);
        if (running.length === 0) throw new FleetboxError('not_running', `no member of ${name} is running`);
        process.exitCode = await fanOut(store, running, command, Math.round((opts.timeout ?? 60) * 1000), opts.json ?? false);
        return;
      }
      const ref = resolveOneMember(store, name, 'or pass --all');
      if (command !== undefined && !opts.tty) {
        process.exitCode = await runOnce(store, ref, command, Math.round((opts.timeout ?? 86_400) * 1000), opts.stdin ?? false);
        return;
      }
      const tty = opts.tty ?? (command === undefined && process.stdin.isTTY === true);
      process.exitCode = await interactive(store, ref, command, tty);
    });
}
