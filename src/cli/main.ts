import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { downCommand } from './commands/down.js';
import { cpCommand } from './commands/cp.js';
import { imageCommand } from './commands/image.js';
import { dashboardCommand } from './commands/dashboard.js';
import { execCommand } from './commands/exec.js';
import { sshCommand } from './commands/ssh.js';
import { forwardCommand } from './commands/forward.js';
import { faultCommand } from './commands/fault.js';
import { logsCommand } from './commands/logs.js';
import { lsCommand } from './commands/ls.js';
import { rmCommand } from './commands/rm.js';
import { doctorCommand, setupCommand } from './commands/setup.js';
import { statusCommand } from './commands/status.js';
import { upCommand } from './commands/up.js';
import { snapshotCommand } from './commands/snapshot.js';
import { EXIT, reportError } from './exit.js';
import { endQuietlyOnClosedPipe } from './output.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('fleetbox')
    .description('real Linux virtual machines as test fixtures and throw-away clusters')
    .version(pkg.version)
    .showSuggestionAfterError()
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `
Examples:
  $ fleetbox setup --yes                       install what VMs need (as root), build the guest image
  $ fleetbox up web -n 3                       boot three real VMs on one private network
  $ fleetbox ssh web-1 -- uname -a             run a command in a guest
  $ fleetbox up demo -n 3 --backend process   start a 3-member cluster of plain processes
  $ fleetbox ls                                list members (--json for scripts)
  $ fleetbox down demo-2 && fleetbox up demo-2 stop one member, re-join it
  $ fleetbox snapshot web warm && fleetbox up t1 --from warm   save a cluster, start a fork of it
  $ fleetbox rm demo --yes                     delete the cluster

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 not found.
State lives in $FLEETBOX_HOME (default ~/.fleetbox).`,
    );
  for (const command of [upCommand(), downCommand(), statusCommand(), lsCommand(), rmCommand(), logsCommand(), forwardCommand(), faultCommand(), snapshotCommand(), execCommand(), sshCommand(), cpCommand(), imageCommand(), dashboardCommand(), setupCommand(), doctorCommand()]) {
    program.addCommand(command);
  }
  // Commander's own errors (unknown option, missing argument) become our usage exit code.
  const exitOverride = (command: Command) => {
    command.exitOverride();
    command.configureOutput({ writeErr: (text) => process.stderr.write(text.replace(/^error: /, 'fleetbox: ')) });
    command.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

export async function main(argv = process.argv): Promise<number> {
  endQuietlyOnClosedPipe();
  try {
    await buildProgram().parseAsync(argv);
    // A command that passes a child's exit status through (exec, ssh) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(error);
  }
}

process.exitCode = await main();
