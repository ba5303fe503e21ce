import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { renderMember } from '../../dist/health/render-text.js';
import type { MemberHealth } from '../../dist/protocol/health.js';
import { CLI, destroyStore, tempStore } from '../helpers.js';

/*
 * A failed boot quotes the guest's console, which the guest writes: its escape sequences (set
 * the title, clear the screen, paint green) must never reach the operator's terminal, whether
 * through `status <member>` or the one-line error of a failed command.
 */

const HOSTILE = 'boot failed; last output:\n\x1b]0;owned\x07\x1b[2J\x1b[32mALL GREEN\x1b[0m\x9b1m\ttail';

function member(overrides: Partial<MemberHealth> = {}): MemberHealth {
  return {
    name: 'web-1', cluster: 'web', status: 'red', health: 'error', problem: 'failed: \x1b[2Jx', action: null, state: 'error', backend: 'qemu',
    ip: null, pid: null, running: false, holderPid: null, source: 'disk', since: new Date().toISOString(), createdAt: null,
    error: HOSTILE, lastHeartbeat: null, heartbeatAgeMs: null, staleAfterMs: null,
    checks: [{ name: 'port', status: 'fail', detail: 'refused \x1b[1A', ms: 1 }],
    ...overrides,
  } as MemberHealth;
}

describe("guest text on the operator's terminal", () => {
  it('status <member> prints the error, problem and check details without escape sequences or control characters', () => {
    const text = renderMember(member(), { colour: false });
    const controls = [...text].filter((ch) => ch !== '\n' && (ch.charCodeAt(0) < 0x20 || (ch.charCodeAt(0) >= 0x7f && ch.charCodeAt(0) <= 0x9f)));
    expect(controls).toEqual([]);
    expect(text).toContain('  error      boot failed; last output:\n             ALL GREEN1m tail\n');
    expect(text).toContain('  problem    failed: x');
    expect(text).toContain('refused ');
  });

  it("a command's one-line error reaches stderr inert", async () => {
    const store = tempStore();
    const env = { ...process.env, FLEETBOX_HOME: store.home };
    const run = promisify(execFile);
    try {
      await run(CLI, ['up', 'g', '--backend', 'process'], { env });
      // The path is the user's, quoted back in the error: a pasted one can carry escapes too.
      const result = await run(CLI, ['cp', '/tmp/fbx-\x1b[2J\x1b]0;owned\x07none', 'g-1:/tmp/x'], { env }).catch((e: { code: number; stderr: string }) => e);
      expect(result.stderr).toBe('fleetbox: cannot copy /tmp/fbx-none: no such file or directory\n');
    } finally {
      await destroyStore(store);
    }
  });
});
