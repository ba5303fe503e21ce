import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSides } from '../../dist/cli/commands/fault.js';
import { faultsPath } from '../../dist/store/faults-record.js';
import type { Store } from '../../dist/store/layout.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
let store: Store;

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home, FLEETBOX_HEALTH_POLL_MS: '200' } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** State letter of a process in /proc (T: stopped). */
const procState = (pid: number) => /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];

describe('fleetbox fault (process members)', () => {
  beforeAll(async () => {
    store = tempStore();
    const up = await cli(['up', 'fp', '-n', '3', '--backend', 'process']);
    expect(up.code, up.stderr).toBe(0);
  });
  afterAll(async () => {
    await destroyStore(store);
  });

  it('reads sides split by / (spaced or glued) and by commas', () => {
    expect(parseSides(['a-1', 'a-2', '/', 'a-3'])).toEqual([['a-1', 'a-2'], ['a-3']]);
    expect(parseSides(['a-1,a-2/a-3'])).toEqual([['a-1', 'a-2'], ['a-3']]);
    expect(parseSides(['a-1', '/'])).toEqual([['a-1'], []]);
  });

  it('bad input is one line and exit 2, and nothing is applied or recorded', async () => {
    const cases: [string[], RegExp][] = [
      [['partition', 'fp-1', '/', 'fp-1'], /fp-1 is named twice/],
      [['partition', 'fp-1', '/'], /a side of the partition is empty/],
      [['partition', 'fp-1', 'fp-2'], /needs two sides/],
      [['partition', 'fp-1', '/', 'other-1'], /members of one cluster only/],
      [['partition', 'fp-1', '/', 'Bad_Name'], /member name/],
      [['heal'], /name members or clusters to heal, or pass --all/],
      [['delay', 'fp-1', '--ms', '-5'], /the delay must be between 0 and 60000 ms, not -5/],
      [['delay', 'fp-1', '--ms', 'soon'], /--ms takes a number of milliseconds, not 'soon'/],
      [['delay', 'fp-1', '--loss', '101%'], /the loss must be a percentage between 0 and 100, not 101/],
      [['delay', 'fp-1', '--rate', 'fast'], /'fast' is not a rate/],
      [['delay', 'fp-1', '--jitter', '5'], /a jitter needs a delay/],
      [['delay', 'fp-1'], /a delay needs --ms, --loss or --rate/],
      [['delay', 'fp-1', '--ms', '10', '--to', 'fp-1'], /fp-1 cannot be delayed toward itself/],
      [['delay', 'fp-1', '--ms', '10', '--to', 'other-1'], /members of one cluster only/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(['fault', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect((await cli(['fault', 'ls', '--json'])).stdout).toBe('[]\n');
  });

  it('a network fault on members that share the host loopback is refused with a reason, nothing recorded', async () => {
    for (const args of [
      ['partition', 'fp-1', '/', 'fp-2'],
      ['delay', 'fp-1', '--ms', '100'],
    ]) {
      const r = await cli(['fault', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/need a cluster of VMs/);
    }
    expect((await cli(['fault', 'ls', '--json'])).stdout).toBe('[]\n');
    expect(() => readFileSync(faultsPath(store, 'fp'))).toThrow();
  });

  it('pause freezes the member (status says so, amber), resume lets it run on; heal --all ends what is left', async () => {
    const pid = (JSON.parse((await cli(['status', 'fp-2', '--json'])).stdout) as { pid: number }).pid;
    const paused = await cli(['fault', 'pause', 'fp-2', '--json']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject([{ kind: 'pause', member: 'fp-2' }]);
    expect(procState(pid)).toBe('T');
    await expect
      .poll(async () => JSON.parse((await cli(['status', 'fp-2', '--json'])).stdout) as { status: string; problem: string }, { timeout: 10_000, interval: 200 })
      .toMatchObject({ status: 'amber', problem: expect.stringContaining('fault injected: fp-2 paused') });
    expect((await cli(['fault', 'ls'])).stdout).toMatch(/^pause +fp-2 /);
    expect((await cli(['fault', 'resume', 'fp-2'])).code).toBe(0);
    expect(procState(pid)).not.toBe('T');
    await cli(['fault', 'pause', 'fp-3']);
    const healed = await cli(['fault', 'heal', '--all', '--json']);
    expect(JSON.parse(healed.stdout)).toMatchObject([{ kind: 'pause', member: 'fp-3' }]);
    expect((await cli(['fault', 'ls', '--json'])).stdout).toBe('[]\n');
  });

  it('down of a paused member heals it first and stops it gracefully', async () => {
    await cli(['fault', 'pause', 'fp-1']);
    const down = await cli(['down', 'fp-1']);
    expect(down.code, down.stderr).toBe(0);
    expect((await cli(['fault', 'ls', '--json'])).stdout).toBe('[]\n');
  });
});
