import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

beforeAll(async () => {
  store = tempStore();
  expect((await cli(['up', 'rem', '-n', '3', '--backend', 'process'])).code).toBe(0);
  expect((await cli(['down', 'rem-3'])).code).toBe(0);
});
afterAll(async () => {
  await destroyStore(store);
});

describe('ssh, exec, cp (process members)', () => {
  it('ssh passes the exit code through', async () => {
    const r = await cli(['ssh', 'rem-1', '--', 'echo $FLEETBOX_NAME; exit 3']);
    expect(r).toMatchObject({ code: 3, stdout: 'rem-1\n' });
  });

  it('ssh --all merges rows prefixed by member, warns about stopped members, exits with the worst code', async () => {
    const r = await cli(['ssh', 'rem', '--all', '--', 'echo out-$FLEETBOX_NAME; [ $FLEETBOX_NAME = rem-2 ] && exit 4; exit 0']);
    expect(r.code).toBe(4);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['rem-1 | out-rem-1', 'rem-2 | out-rem-2']);
    expect(r.stderr).toContain('warning: rem-3 is stopped');
  });

  it('ssh --all --timeout turns a hanging member into a warning', async () => {
    const r = await cli(['ssh', 'rem', '--all', '--timeout', '0.5', '--json', '--', '[ $FLEETBOX_NAME = rem-1 ] && sleep 30; echo done']);
    const rows = JSON.parse(r.stdout) as { name: string; exitCode: number; code?: string }[];
    expect(rows.find((x) => x.name === 'rem-1')).toMatchObject({ exitCode: 255, code: 'exec_timeout' });
    expect(rows.find((x) => x.name === 'rem-2')).toMatchObject({ exitCode: 0 });
    expect(r.code).toBe(255);
  });

  it('ssh to a stopped member or a cluster without --all fails with one line', async () => {
    expect(await cli(['ssh', 'rem-3', '--', 'true'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^fleetbox: rem-3 is stopped/) });
    expect(await cli(['ssh', 'rem', '--', 'true'])).toMatchObject({ code: 2, stderr: expect.stringContaining('pass --all') });
  });

  it('exec runs a host command in the cluster network and passes its exit code', async () => {
    expect(await cli(['exec', 'rem', '--', 'sh', '-c', 'echo inside; exit 6'])).toMatchObject({ code: 6, stdout: 'inside\n' });
    expect((await cli(['exec', 'nope', '--', 'true'])).code).toBe(3);
  });

  it('cp copies both ways and refuses two local paths', async () => {
    const src = `${store.home}/src.txt`;
    writeFileSync(src, 'payload\n');
    expect((await cli(['cp', src, `rem-1:${store.home}/dst.txt`])).code).toBe(0);
    expect(readFileSync(`${store.home}/dst.txt`, 'utf8')).toBe('payload\n');
    expect((await cli(['cp', `rem-2:${store.home}/dst.txt`, `${store.home}/back.txt`])).code).toBe(0);
    expect(readFileSync(`${store.home}/back.txt`, 'utf8')).toBe('payload\n');
    expect((await cli(['cp', 'a', 'b'])).code).toBe(2);
  });
});
