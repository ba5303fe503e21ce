import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('fleetbox CLI', () => {
  it.each(['../x', 'A', 'has space', 'a'.repeat(64), '""'])('refuses the name %s with one line, exit 2, nothing written', async (name) => {
    store = tempStore();
    const result = await cli(['up', name === '""' ? '' : name, '--backend', 'process']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^fleetbox: invalid name .*lowercase letters/);
    expect(readdirSync(store.clustersDir)).toEqual([]);
  });

  it('the issue walkthrough: up, ls, status, down, re-join, down cluster, rm', async () => {
    store = tempStore();
    const upped = await cli(['up', 'demo', '-n', '3', '--backend', 'process']);
    expect(upped.code).toBe(0);
    expect(upped.stdout).toMatch(/^NAME\s+STATE\s+IP\s+PID\s+BACKEND\n/);
    const ls = await cli(['ls']);
    expect(ls.stdout.split('\n')[0]).toMatch(/^NAME\s+CLUSTER\s+STATE\s+IP\s+PID\s+AGE\s+BACKEND$/);
    expect(ls.stdout.match(/running/g)).toHaveLength(3);
    const status = await cli(['status', 'demo-2', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: 'demo-2', state: 'running', source: 'holder' });
    expect((await cli(['down', 'demo-2'])).code).toBe(0);
    const list = JSON.parse((await cli(['ls', '--json'])).stdout) as { name: string; state: string }[];
    expect(list.map((m) => m.state)).toEqual(['running', 'stopped', 'running']);
    expect((await cli(['up', 'demo-2'])).code).toBe(0);
    expect((await cli(['down', 'demo'])).code).toBe(0);
    const after = JSON.parse((await cli(['ls', '--json'])).stdout) as { state: string }[];
    expect(after.map((m) => m.state)).toEqual(['stopped', 'stopped', 'stopped']);
    expect((await cli(['ls', '-q'])).stdout).toBe('demo-1\ndemo-2\ndemo-3\n');
    const removed = await cli(['rm', 'demo', '--yes']);
    expect(removed.code).toBe(0);
    expect(readdirSync(store.clustersDir)).toEqual([]);
  });

  it('--json output is pure JSON on stdout, notices go to stderr', async () => {
    store = tempStore();
    const result = await cli(['up', 'js', '--backend', 'process', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toHaveLength(1);
    expect((JSON.parse((await cli(['ls', '--json'])).stdout) as unknown[]).length).toBe(1);
  });

  it('an unknown member is exit 3; rm without --yes and without a terminal is exit 2', async () => {
    store = tempStore();
    const missing = await cli(['status', 'nope']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/^fleetbox: no member or cluster named nope/);
    expect((await cli(['up', 'keep', '--backend', 'process'])).code).toBe(0);
    const rm = await cli(['rm', 'keep']);
    expect(rm.code).toBe(2);
    expect(rm.stderr).toMatch(/without --yes/);
    expect((await cli(['ls', '-q'])).stdout).toBe('keep-1\n');
  });

  it('usage errors (unknown option, bad -n, -n with a member name) are exit 2 without a stack trace', async () => {
    store = tempStore();
    for (const args of [['up', 'x', '--bogus'], ['up', 'x', '-n', 'zero'], ['up', 'x-1', '-n', '2', '--backend', 'process'], ['down']]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^fleetbox: /);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('commands on one member given a cluster name (ssh, logs, forward, cp): exit 2, one line naming a member to give instead', async () => {
    store = tempStore();
    expect((await cli(['up', 'pair', '-n', '2', '--backend', 'process'])).code).toBe(0);
    for (const args of [['ssh', 'pair', '--', 'true'], ['logs', 'pair'], ['forward', 'pair', '80'], ['cp', 'pair:/etc/hostname', '/tmp/fbx-never']]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^fleetbox: pair is a cluster; name one member, e\.g\. pair-1/);
    }
    expect((await cli(['ssh', 'pair', '--', 'true'])).stderr).toContain('pair-1 or pass --all');
  });

  it('--version and --help', async () => {
    store = tempStore();
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const help = await cli(['up', '--help']);
    expect(help.stdout).toContain('Examples:');
  });
});
