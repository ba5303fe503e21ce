import { Command } from 'commander';
import type { Prerequisite } from '../../setup/prereqs.js';
import { FleetboxError } from '../../protocol/errors.js';
import { notice, openStore, printJson } from '../output.js';

function printChecks(checks: Prerequisite[]): void {
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    const mark = c.ok ? 'ok     ' : c.required ? 'MISSING' : 'note   ';
    const fix = !c.ok && c.fix ? `  → ${c.fix}` : '';
    process.stdout.write(`${mark}  ${c.name.padEnd(width)}  ${c.detail}${fix}\n`);
  }
}

function missing(checks: Prerequisite[]): Prerequisite[] {
  return checks.filter((c) => c.required && !c.ok);
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check what fleetbox needs on this machine (real VMs and plain-process members): one line per prerequisite, with the fix')
    .option('--json', 'print the checks as JSON')
    .addHelpText('after', '\nExample:\n  $ fleetbox doctor\n  ok       qemu            /usr/bin/qemu-system-x86_64 …')
    .action(async (opts: { json?: boolean }) => {
      const { checkPrerequisites } = await import('../../setup/prereqs.js');
      const checks = await checkPrerequisites(openStore());
      if (opts.json) printJson(checks);
      else printChecks(checks);
      const lacking = missing(checks);
      if (lacking.length > 0) {
        throw new FleetboxError('missing_prerequisite', `${lacking.length} prerequisite(s) missing (${lacking.map((c) => c.name).join(', ')}); run 'fleetbox setup --yes'`);
      }
    });
}

export function setupCommand(): Command {
  return new Command('setup')
    .description('install what real VMs need (Debian packages, as root) and build the guest image')
    .option('-y, --yes', 'install without asking (needed without a terminal)')
    .option('--json', 'print the final checks as JSON')
    .addHelpText('after', '\nExample:\n  $ sudo npx fleetbox setup --yes')
    .action(async (opts: { yes?: boolean; json?: boolean }) => {
      const { checkPrerequisites, installPrerequisites } = await import('../../setup/prereqs.js');
      const store = openStore();
      const before = await checkPrerequisites(store);
      const lacking = missing(before);
      if (lacking.length > 0 && !opts.yes) {
        if (!opts.json) printChecks(before);
        throw new FleetboxError('usage', `would install ${lacking.map((c) => c.package ?? c.name).join(', ')}; run again with --yes`);
      }
      const started = Date.now();
      const after = await installPrerequisites(store, { onProgress: (message) => notice(`setup: ${message}`) });
      if (opts.json) printJson(after);
      else printChecks(after);
      const still = missing(after);
      if (still.length > 0) {
        throw new FleetboxError('missing_prerequisite', `still missing after setup: ${still.map((c) => `${c.name} (${c.fix ?? c.detail})`).join(', ')}`);
      }
      notice(`setup: ready in ${((Date.now() - started) / 1000).toFixed(1)} s; try 'fleetbox up demo -n 3'`);
    });
}
