import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { Command } from 'commander';
import type { Store } from '../../store/layout.js';
import type { MemberRef } from '../../store/members.js';
import { parseWhole } from '../numbers.js';
import { notice, openStore } from '../output.js';

function readRange(path: string, from: number, to: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const n = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Which incarnation of the member this is: its directory's inode and its config's creation time.
 * A member removed and made again under the same name differs in at least one: a new directory
 * may get the old inode number back, but not together with the old creation time.
 */
function identity(store: Store, ref: MemberRef): string | undefined {
  try {
    const { ino } = statSync(store.memberDir(ref.cluster, ref.name));
    const { createdAt } = JSON.parse(readFileSync(store.configPath(ref.cluster, ref.name), 'utf8')) as { createdAt?: unknown };
    return `${ino}|${String(createdAt)}`;
  } catch {
    return undefined;
  }
}

export function logsCommand(): Command {
  return new Command('logs')
    .description("a member's console: the guest's serial log (qemu) or the process's output")
    .argument('<member>', 'member name, e.g. web-1')
    .option('-f, --follow', 'keep printing new output until interrupted')
    .option('-n, --lines <n>', 'how many lines of the end to show first (0 = all)', parseWhole, 200)
    .addHelpText('after', '\nExamples:\n  $ fleetbox logs web-1\n  $ fleetbox logs web-1 -f')
    .action(async (name: string, opts: { follow?: boolean; lines: number }) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { resolveOneMember } = await import('../../control/targets.js');
      const store = openStore();
      const ref = resolveOneMember(store, name);
      const path = store.serialLogPath(ref.cluster, ref.name);
      const self = identity(store, ref);
      let offset = sizeOf(path);
      const head = readRange(path, Math.max(0, offset - 1024 * 1024), offset).toString('utf8');
      const lines = head.split('\n');
      const shown = opts.lines === 0 ? head : lines.slice(-(opts.lines + 1)).join('\n');
      process.stdout.write(shown);
      if (!opts.follow) return;
      // Polling, not fs.watch: watch misses appends on some filesystems and the file may be replaced.
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        // Removed (rm), maybe already made again under the same name: that is another member's log.
        const now = identity(store, ref);
        if (now === undefined || now !== self) {
          notice(`${ref.name} was removed; stopped following its log`);
          return;
        }
        const size = sizeOf(path);
        if (size < offset) offset = 0; // truncated or recreated by a new boot
        if (size > offset) {
          process.stdout.write(readRange(path, offset, size));
          offset = size;
        }
      }
    });
}
