import { Command } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { isValidName } from '../../store/names.js';
import { openStore } from '../output.js';

/** "web-1:/etc/hosts" → { member, path }; a plain path → undefined. */
function parseRemote(spec: string): { member: string; path: string } | undefined {
  const colon = spec.indexOf(':');
  const member = spec.slice(0, colon);
  const path = spec.slice(colon + 1);
  return colon > 0 && path !== '' && isValidName(member) ? { member, path } : undefined;
}

export function cpCommand(): Command {
  return new Command('cp')
    .description('copy a file, or a directory with -r, between the host and a member; modes kept, files replaced by rename')
    .argument('<source>', 'local path or <member>:<path>')
    .argument('<destination>', 'local path or <member>:<path>; an existing directory receives the source inside it')
    .option('-r, --recursive', 'copy a directory and everything under it (symlinks stay links)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ fleetbox cp ./app web-1:/usr/local/bin/app      # keeps the executable bit',
        '  $ fleetbox cp -r ./config web-1:/etc/             # lands as /etc/config',
        '  $ fleetbox cp web-1:/var/log/messages ./messages',
        '  $ fleetbox cp -r web-1:/var/log ./guest-logs',
      ].join('\n'),
    )
    .action(async (source: string, destination: string, flags: { recursive?: boolean }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { resolveOneMember } = await import('../../control/targets.js');
      const { copyFromMember, copyToMember } = await import('../../lib/copy.js');
      const from = parseRemote(source);
      const to = parseRemote(destination);
      if ((from && to) || (!from && !to)) {
        throw new FleetboxError('usage', 'exactly one side must be <member>:<path>, e.g. fleetbox cp ./file web-1:/tmp/file');
      }
      const store = openStore();
      const remote = (from ?? to)!;
      const ref = resolveOneMember(store, remote.member);
      const options = { recursive: flags.recursive === true };
      if (to) await copyToMember(store, ref, source, to.path, options);
      else await copyFromMember(store, ref, remote.path, destination, options);
    });
}
