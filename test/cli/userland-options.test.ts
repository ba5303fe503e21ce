import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../../dist/store/layout.js';
import { writeMemberConfig } from '../../dist/store/members.js';
import { MemberConfigSchema } from '../../dist/store/member-config.js';
import { CLI, tempStore } from '../helpers.js';

/*
 * --rootfs, --image and --share refused before anything starts: one line, exit 2, no config
 * written, nothing running. (The real boots are in test/qemu/userland.test.ts.)
 */

const run = promisify(execFile);
const store: Store = tempStore();
const folder = mkdtempSync('/tmp/fbx-opt-');
afterAll(() => {
  rmSync(store.home, { recursive: true, force: true });
  rmSync(folder, { recursive: true, force: true });
});

function cli(args: string[]) {
  return run(CLI, args, { env: { ...process.env, FLEETBOX_HOME: store.home }, timeout: 30_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function refused(args: string[], message: RegExp): Promise<void> {
  const result = await cli(args);
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(existsSync(store.clusterDir('x')), 'no member was made').toBe(false);
}

describe('up --rootfs / --image / --share: bad input', () => {
  it('a share that does not exist, a file, the fleetbox home, a system folder in the guest, a malformed spec', async () => {
    await refused(['up', 'x', '--share', join(folder, 'nope')], /^fleetbox: cannot share .*nope: it does not exist \(ENOENT\); create it or fix the path$/);
    await refused(['up', 'x', '--share', `${CLI}:/opt/cli`], /is not a directory; share the folder that holds it$/);
    await refused(['up', 'x', '--share', `${store.home}:/h:ro`], /it is or holds the fleetbox home/);
    await refused(['up', 'x', '--share', `${folder}:/proc/x`], /cannot mount a share at '\/proc\/x' in the guest/);
    await refused(['up', 'x', '--share', `${folder}:/a:/b`], /--share takes SRC\[:DST\]\[:ro\|rw\]/);
    await refused(['up', 'x', '--rootfs', 'bogus'], /argument 'bogus' is invalid\. Allowed choices are initramfs, host, image/);
  });

  it('an image that was never built; --rootfs image without --image; --image with --rootfs host', async () => {
    await refused(['up', 'x', '--image', 'pg'], /^fleetbox: no image named pg; build it first: fleetbox image build pg --packages …$/);
    await refused(['up', 'x', '--rootfs', 'image'], /--rootfs image needs --image NAME/);
    await refused(['up', 'x', '--rootfs', 'host', '--image', 'pg'], /cannot go with --rootfs host/);
    await refused(['up', 'x', '--rootfs', 'host', '--init', 'systemd'], /^fleetbox: --init systemd boots the systemd of an image; give --image NAME/);
  });

  it('the process backend has no guest to give a root or shares to', async () => {
    await refused(['up', 'x', '--backend', 'process', '--rootfs', 'host'], /need real VMs; a process member already runs on the host/);
    await refused(['up', 'x', '--backend', 'process', '--share', folder], /need real VMs/);
  });

  it("what a member is made of stays: another --rootfs or --share for an existing member is refused, with how to change it", async () => {
    mkdirSync(join(folder, 'a'));
    const config = MemberConfigSchema.parse({ name: 'y-1', cluster: 'y', backend: 'qemu', rootfs: 'host', shares: [{ host: join(folder, 'a'), guest: '/a' }], createdAt: new Date().toISOString() });
    writeMemberConfig(store, config);
    for (const [args, message] of [
      [['--rootfs', 'initramfs'], /member y-1 was created with --rootfs host, not initramfs; 'fleetbox rm y-1 --yes' first to change it/],
      [['--share', folder], /member y-1 was created with shares .*:\/a, not .*; 'fleetbox rm y-1 --yes' first/],
    ] as const) {
      const result = await cli(['up', 'y-1', ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });

  it('image build, ls and rm: bad names and unknown images are one line each', async () => {
    const build = await cli(['image', 'build', 'Bad_Name']);
    expect(build.code).toBe(2);
    expect(build.stderr).toMatch(/^fleetbox: .*image name/);
    const pkg = await cli(['image', 'build', 'ok', '--packages', 'no;rm']);
    expect(pkg).toMatchObject({ code: 2 });
    expect(pkg.stderr).toMatch(/'no;rm' is not a Debian package name/);
    expect(await cli(['image', 'ls', '--json'])).toMatchObject({ code: 0, stdout: '[]\n' });
    const rm = await cli(['image', 'rm', 'ghost']);
    expect(rm.code).toBe(3);
    expect(rm.stderr.trim()).toBe("fleetbox: no image named ghost; 'fleetbox image ls' lists them");
  });
});
