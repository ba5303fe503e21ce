import { Command } from 'commander';
import { age, notice, openStore, printJson, printTable } from '../output.js';

function packageList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[,\s]+/).filter(Boolean)];
}

function buildCommand(): Command {
  return new Command('build')
    .description('build (or reuse) a guest root from Debian packages with mmdebstrap')
    .argument('<name>', 'image name, e.g. pg')
    .option('--packages <list>', 'comma-separated Debian packages (repeatable), e.g. postgresql,iproute2', packageList)
    .option('--suite <suite>', "Debian suite (default: the host's, e.g. bookworm)")
    .option('--force', 'build again even when nothing changed')
    .option('--json', 'print the image as JSON')
    .addHelpText(
      'after',
      `
An image is cached under the store by a hash of its inputs: building it again with the same
suite and packages returns at once. Progress goes to stderr.

Examples:
  $ fleetbox image build redis --packages redis-server
  $ fleetbox up cache -n 3 --image redis --disk 256`,
    )
    .action(async (name: string, opts: { packages?: string[]; suite?: string; force?: boolean; json?: boolean }) => {
      const { buildRootImage } = await import('../../image/debian-image.js');
      const store = openStore();
      const image = await buildRootImage(store, {
        name,
        packages: opts.packages ?? [],
        ...(opts.suite !== undefined && { suite: opts.suite }),
        ...(opts.force && { force: true }),
        onProgress: (line) => notice(`  ${line}`),
      });
      const { root: _root, ...shown } = image;
      if (opts.json) return printJson(shown);
      if (image.cached) notice(`image ${name} is up to date (built ${age(image.createdAt)} ago; --force builds it again)`);
      printTable(['NAME', 'SUITE', 'PACKAGES', 'SIZE', 'BUILT'], [[image.name, image.suite, image.packages.join(',') || '-', `${Math.round(image.bytes / 1048576)} MiB`, `${image.buildSeconds} s`]]);
    });
}

function lsImagesCommand(): Command {
  return new Command('ls')
    .alias('list')
    .description('list the built images')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listRootImages, membersUsing } = await import('../../store/root-images.js');
      const store = openStore();
      const images = listRootImages(store).map(({ root: _root, ...image }) => ({ ...image, usedBy: membersUsing(store, image.name) }));
      if (opts.json) return printJson(images);
      if (images.length === 0) {
        notice("no images; build one with 'fleetbox image build NAME --packages …'");
        return;
      }
      printTable(
        ['NAME', 'SUITE', 'PACKAGES', 'SIZE', 'AGE', 'USED BY'],
        images.map((i) => [i.name, i.suite, i.packages.join(',') || '-', `${Math.round(i.bytes / 1048576)} MiB`, age(i.createdAt), i.usedBy.join(',') || '-']),
      );
    });
}

function rmImageCommand(): Command {
  return new Command('rm')
    .description('delete an image (refused while a member is made with it)')
    .argument('<name...>', 'image names')
    .action(async (names: string[]) => {
      const { removeRootImage } = await import('../../image/debian-image.js');
      const store = openStore();
      for (const name of names) {
        await removeRootImage(store, name);
        notice(`${name}: removed`);
      }
    });
}

export function imageCommand(): Command {
  return new Command('image')
    .description('guest roots built from Debian packages: build, ls, rm')
    .addCommand(buildCommand())
    .addCommand(lsImagesCommand())
    .addCommand(rmImageCommand());
}
