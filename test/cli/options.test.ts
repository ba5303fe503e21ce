import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { cpCommand } from '../../dist/cli/commands/cp.js';
import { dashboardCommand } from '../../dist/cli/commands/dashboard.js';
import { downCommand } from '../../dist/cli/commands/down.js';
import { forwardCommand } from '../../dist/cli/commands/forward.js';
import { imageCommand } from '../../dist/cli/commands/image.js';
import { logsCommand } from '../../dist/cli/commands/logs.js';
import { rmCommand } from '../../dist/cli/commands/rm.js';
import { sshCommand } from '../../dist/cli/commands/ssh.js';
import { statusCommand } from '../../dist/cli/commands/status.js';
import { upCommand } from '../../dist/cli/commands/up.js';
import { parseCount, parseWhole, seconds, wholeNumber } from '../../dist/cli/numbers.js';

/*
 * Each command's option parsing on its own: the action is replaced by one that records what it
 * was given, so nothing runs; commander's refusals come back as the message a user would read.
 */

type Parsed = { args: unknown[]; opts: Record<string, unknown> };

async function parse(command: Command, argv: string[]): Promise<Parsed> {
  let parsed: Parsed | undefined;
  const quiet = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeErr: () => {}, writeOut: () => {} });
    c.action((...given: unknown[]) => {
      const self = given.at(-1) as Command;
      parsed = { args: given.slice(0, -2), opts: self.opts() };
    });
    c.commands.forEach(quiet);
  };
  quiet(command);
  await command.parseAsync(argv, { from: 'user' });
  if (!parsed) throw new Error('the action did not run');
  return parsed;
}

async function refusal(command: Command, argv: string[]): Promise<string> {
  try {
    await parse(command, argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.message;
    throw error;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('CLI option parsing, command by command', () => {
  it('up: counts, sizes, root kinds, repeatable shares, the boot timeout in seconds', async () => {
    const { args, opts } = await parse(upCommand(), ['web', '-n', '3', '--mem', '512', '--disk', '64', '--rootfs', 'host', '--share', './a', '--share', './b:/b:ro', '--timeout', '300']);
    expect(args).toEqual([['web']]);
    expect(opts).toMatchObject({ count: 3, mem: 512, disk: 64, rootfs: 'host', share: ['./a', './b:/b:ro'], timeout: 300, backend: 'qemu' });
    expect((await parse(upCommand(), ['pg', '--image', 'pg', '--init', 'systemd'])).opts).toMatchObject({ image: 'pg', init: 'systemd' });
    expect(await refusal(upCommand(), ['web', '-n', '0'])).toMatch(/expected a whole number of at least 1, got 0/);
    expect(await refusal(upCommand(), ['web', '--mem', '32'])).toMatch(/expected a whole number from 64 to 65536/);
    expect(await refusal(upCommand(), ['web', '--timeout', '1.5'])).toMatch(/expected a whole number from 1 to 3600/);
    expect(await refusal(upCommand(), ['web', '--backend', 'docker'])).toMatch(/Allowed choices are process, qemu/);
    expect(await refusal(upCommand(), ['web', '--init', 'openrc'])).toMatch(/Allowed choices are fleetbox, systemd/);
    expect(await refusal(upCommand(), [])).toMatch(/missing required argument 'name'/);
  });

  it('down and rm: names or --all, a stop budget, --yes', async () => {
    expect((await parse(downCommand(), ['web-2', 'db', '--timeout', '2.5'])).args).toEqual([['web-2', 'db']]);
    expect((await parse(downCommand(), ['--all'])).opts).toMatchObject({ all: true, timeout: '10' });
    expect((await parse(rmCommand(), ['web', '-y', '--json'])).opts).toMatchObject({ yes: true, json: true });
    expect(await refusal(rmCommand(), ['web', '--force'])).toMatch(/unknown option '--force'/);
  });

  it('ssh: the command after --, --all with a per-member budget', async () => {
    const { args, opts } = await parse(sshCommand(), ['web', '--all', '--timeout', '5', '--', 'uname', '-a']);
    expect(args).toEqual(['web', ['uname', '-a']]);
    expect(opts).toMatchObject({ all: true, timeout: 5 });
    expect(await refusal(sshCommand(), ['web-1', '--timeout', '0'])).toMatch(/expected seconds, more than 0 and at most 86400/);
  });

  it('logs, forward, cp: line counts, ports, -r', async () => {
    expect((await parse(logsCommand(), ['web-1', '-n', '0', '-f'])).opts).toEqual({ lines: 0, follow: true });
    expect((await parse(logsCommand(), ['web-1'])).opts).toEqual({ lines: 200 });
    expect(await refusal(logsCommand(), ['web-1', '-n', 'ten'])).toMatch(/expected a whole number/);
    expect((await parse(forwardCommand(), ['db-1', '5432'])).args).toEqual(['db-1', 5432]);
    expect(await refusal(forwardCommand(), ['db-1', '70000'])).toMatch(/expected a port from 1 to 65535/);
    expect((await parse(cpCommand(), ['-r', './dir', 'web-1:/opt/dir'])).opts).toMatchObject({ recursive: true });
    expect(await refusal(cpCommand(), ['./only-one'])).toMatch(/missing required argument 'destination'/);
  });

  it('status and dashboard: deadlines in seconds, ports, repeatable allowed hosts', async () => {
    expect((await parse(statusCommand(), ['--timeout', '0.5', '--issues', '3'])).opts).toMatchObject({ timeout: 0.5, issues: 3 });
    expect(await refusal(statusCommand(), ['--timeout', '601'])).toMatch(/expected seconds, more than 0 and at most 600/);
    const dashboard = await parse(dashboardCommand(), ['--port', '0', '--allow-host', 'box', '--allow-host', '10.0.0.2']);
    expect(dashboard.opts).toMatchObject({ port: 0, allowHost: ['box', '10.0.0.2'], bind: '127.0.0.1' });
    expect(await refusal(dashboardCommand(), ['--allow-host', 'box:7070'])).toMatch(/without a port/);
    expect(await refusal(dashboardCommand(), ['--port', '65536'])).toMatch(/expected a port from 0 to 65535/);
  });

  it('image build: packages as a list (commas, repeats), suite, --force', async () => {
    const { args, opts } = await parse(imageCommand(), ['build', 'pg', '--packages', 'postgresql,iproute2', '--packages', 'curl', '--suite', 'trixie', '--force']);
    expect(args).toEqual(['pg']);
    expect(opts).toEqual({ packages: ['postgresql', 'iproute2', 'curl'], suite: 'trixie', force: true });
    expect((await parse(imageCommand(), ['rm', 'a', 'b'])).args).toEqual([['a', 'b']]);
    expect(await refusal(imageCommand(), ['build'])).toMatch(/missing required argument 'name'/);
  });
});

describe('the number parsers every command shares', () => {
  it('take plain digits only, in range, and say the range when they refuse', () => {
    expect(wholeNumber(1, 10)('7')).toBe(7);
    for (const bad of ['1e1', '0x5', ' 5', '', '-1', '5.0', '11', '0']) expect(() => wholeNumber(1, 10)(bad)).toThrow(/expected a whole number from 1 to 10/);
    expect(() => wholeNumber(1, 65535, 'a port')('0')).toThrow(/expected a port from 1 to 65535/);
    expect(parseWhole('0')).toBe(0);
    expect(() => parseWhole('1e3')).toThrow(/expected a whole number/);
    expect(parseCount('3')).toBe(3);
    expect(() => parseCount('0')).toThrow(/at least 1, got 0/);
    expect(seconds(600)('0.25')).toBe(0.25);
    for (const bad of ['0', '600.5', '1e2', '.5', 'soon']) expect(() => seconds(600)(bad)).toThrow(/expected seconds, more than 0 and at most 600/);
  });
});
