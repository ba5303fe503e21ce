import { Command, Option } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { BACKENDS, DEFAULT_BACKEND, INIT_KINDS, ROOTFS_KINDS } from '../../store/backend-kinds.js';
import type { BackendKind } from '../../store/member-config.js';
import { bootProgress } from '../boot-progress.js';
import { wholeNumber as whole, parseCount } from '../numbers.js';
import { notice, openStore, printJson, printTable } from '../output.js';

export function upCommand(): Command {
  return new Command('up')
    .description('start members (booting new ones or re-joining stopped ones to their live cluster)')
    .argument('<name...>', 'cluster name (web) or member name (web-2)')
    // No upper bound here: how many members a cluster has addresses for is up's rule (planMembers).
    .option('-n, --count <n>', 'with a cluster name: members <cluster>-1 … -<n>', parseCount)
    .addOption(new Option('--backend <kind>', 'what a member is: a real VM or a plain process').choices(BACKENDS).default(DEFAULT_BACKEND))
    .option('--cmd <command>', "process backend: shell command a member runs (gets FLEETBOX_IP, FLEETBOX_PORT, FLEETBOX_NAME); default: a built-in TCP server")
    .option('--port <port>', 'process backend: port the member listens on', whole(1, 65535))
    .option('--cpus <n>', 'qemu: virtual CPUs per member', whole(1, 64))
    .option('--mem <MiB>', 'qemu: memory per member in MiB', whole(64, 65536))
    .option('--disk <MiB>', 'qemu: size of a persistent disk mounted at /data (0 = none)', whole(0, 1048576))
    .addOption(new Option('--rootfs <kind>', "qemu: the guest's root: initramfs, the small RAM guest; host, the host's root read-only with a writable overlay (on --disk when given); image, see --image").choices(ROOTFS_KINDS))
    .option('--image <name>', "qemu: boot an image built with 'fleetbox image build' (read-only, writable overlay per member; implies --rootfs image)")
    .addOption(new Option('--init <kind>', "qemu, with --image: PID 1 is fleetbox's small init, or the image's systemd (running once the system is up)").choices(INIT_KINDS))
    .option('--share <SRC[:DST][:ro|rw]>', 'qemu: a host folder in every member at DST (default: SRC), read-write unless :ro; repeatable', (spec: string, all: string[] = []) => [...all, spec])
    .option('--fast', 'qemu: insist on starting members as clones of a booted template (the default wherever a member can be cloned: the RAM guest without --disk/--share); refused where it cannot')
    .option('--boot', 'qemu: boot the members instead of cloning them (kept for their later starts)')
    .option('--from <snapshot>', "start a new cluster as a fork of a snapshot ('fleetbox snapshot'): its members as saved, same addresses, own network")
    .option('--timeout <seconds>', 'boot timeout per call (image preparation is not charged)', whole(1, 3600), 120)
    .option('--json', 'print the members as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ fleetbox up demo -n 3 --backend process     three process members demo-1..3
  $ fleetbox up web -n 3                         three real VMs, cloned from a booted template
  $ fleetbox up web -n 3 --boot                  three real VMs, each booted
  $ fleetbox up web-2                            re-join web-2 to the live cluster web
  $ fleetbox up db -n 3 --rootfs host            guests run the host's installed software
  $ fleetbox up app -n 2 --share ./build:/opt/app:ro   a host folder in every member
  $ fleetbox up pg -n 2 --image pg --disk 1024    members boot an image (fleetbox image build)
  $ fleetbox up t1 --from warm                   a fork of snapshot warm (fleetbox snapshot)`,
    )
    .action(async (names: string[], opts: {
      count?: number; backend: BackendKind; cmd?: string; port?: number; cpus?: number; mem?: number; disk?: number; timeout: number; json?: boolean;
      rootfs?: (typeof ROOTFS_KINDS)[number]; image?: string; init?: (typeof INIT_KINDS)[number]; share?: string[]; fast?: boolean; boot?: boolean; from?: string;
    }, command: Command) => {
      // Loaded when the command runs: the CLI starts without zod and the store code.
      const { up } = await import('../../control/up.js');
      const { parseShareSpec } = await import('../../store/shares.js');
      if (opts.fast && opts.boot) throw new FleetboxError('usage', '--fast clones and --boot boots: give one of them');
      const store = openStore();
      const backendGiven = command.getOptionValueSource('backend') === 'cli';
      const result = await up(store, {
        names,
        ...(opts.count !== undefined && { count: opts.count }),
        spec: {
          ...(backendGiven ? { backend: opts.backend } : {}),
          ...(opts.cmd !== undefined && { cmd: opts.cmd }),
          ...(opts.port !== undefined && { port: opts.port }),
          ...(opts.cpus !== undefined && { cpus: opts.cpus }),
          ...(opts.mem !== undefined && { memoryMiB: opts.mem }),
          ...(opts.disk !== undefined && { diskMiB: opts.disk }),
          ...(opts.rootfs !== undefined && { rootfs: opts.rootfs }),
          ...(opts.image !== undefined && { rootfs: opts.rootfs ?? 'image', image: opts.image }),
          ...(opts.init !== undefined && { init: opts.init }),
          ...(opts.fast !== undefined && { fast: true }),
          ...(opts.boot !== undefined && { fast: false }),
          ...(opts.share !== undefined && { shares: opts.share.map((spec) => parseShareSpec(spec)) }),
        },
        bound: false,
        ...(opts.from !== undefined && { from: opts.from }),
        bootTimeoutMs: opts.timeout * 1000,
        ...(!opts.json && { onChange: bootProgress(notice) }),
      });
      if (opts.json) {
        printJson(result.members);
        return;
      }
      printTable(
        ['NAME', 'STATE', 'IP', 'PID', 'BACKEND'],
        result.members.map((m) => [m.name, m.state, m.ip, m.pid, m.backend]),
      );
    });
}
