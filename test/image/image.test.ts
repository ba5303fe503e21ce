import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage, type GuestImage } from '../../dist/image/ensure-image.js';
import { sha256File } from '../../dist/image/file-hash.js';
import { GUEST_INIT, RESEED_PROGRAM } from '../../dist/image/guest-init.js';
import { reseedProgram } from '../../dist/image/reseed-program.js';
import { kernelCacheRoot } from '../../dist/image/kernel-package.js';
import { ensureSshKey } from '../../dist/image/ssh-key.js';
import { extractVmlinux } from '../../dist/image/vmlinux.js';
import { isFleetboxError } from '../../dist/protocol/errors.js';
import { Store } from '../../dist/store/layout.js';
import { SHARED_HOME, reportSkip } from '../qemu/harness.js';

function cannotBuild(): string | undefined {
  for (const tool of ['apt-get', 'dpkg', 'cpio', 'lz4', 'ssh-keygen', 'dropbearkey']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed (run: fleetbox setup --yes)`;
    }
  }
  return undefined;
}

const skip = reportSkip('image tests', cannotBuild());

describe.skipIf(skip)('guest image', () => {
  let store: Store;
  let first: GuestImage;
  const messages: string[] = [];

  beforeAll(async () => {
    // Own store (the corruption tests must not disturb other files' VMs), seeded with the shared
    // kernel download so the suite fetches the kernel package once.
    const shared = new Store(SHARED_HOME).ensure();
    await ensureImage(shared);
    store = new Store(mkdtempSync('/tmp/fbx-i-')).ensure();
    cpSync(kernelCacheRoot(shared), kernelCacheRoot(store), { recursive: true });
    first = await ensureImage(store, { onProgress: (m) => messages.push(m) });
  }, 300_000);

  afterAll(() => {
    if (store) rmSync(store.home, { recursive: true, force: true });
  });

  it('builds kernel + initramfs under images/<name>-<hash>/ with a manifest of sha256 sums', async () => {
    expect(first.dir).toMatch(/\/images\/guest-[0-9a-f]{16}$/);
    expect(messages.some((m) => m.startsWith('building guest image'))).toBe(true);
    for (const [file, sum] of Object.entries(first.manifest.files)) {
      expect(await sha256File(join(first.dir, file))).toBe(sum);
    }
    expect(readFileSync(first.kernel).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(first.manifest.kernel.package).toMatch(/^linux-image-.*-cloud-amd64$/);
    const listing = execFileSync('sh', ['-c', `lz4 -dc '${first.initrd}' | cpio -t --quiet`], { encoding: 'utf8' }).split('\n');
    for (const path of ['init', 'bin/busybox', 'bin/dropbear', 'bin/qemu-ga', 'lib/modules/virtio_console.ko', 'lib/modules/virtio_net.ko', 'root/.ssh/authorized_keys', 'lib64/ld-linux-x86-64.so.2']) {
      expect(listing).toContain(path);
    }
    const init = execFileSync('sh', ['-c', `lz4 -dc '${first.initrd}' | cpio -i --to-stdout --quiet init`], { encoding: 'utf8' });
    expect(init).toBe(GUEST_INIT);
    // The reseed program that copied guests run, byte for byte.
    const reseed = execFileSync('sh', ['-c', `lz4 -dc '${first.initrd}' | cpio -i --to-stdout --quiet ${RESEED_PROGRAM.slice(1)}`]);
    expect(reseed.equals(reseedProgram())).toBe(true);
  });

  it('is a cache hit the second time: same directory, nothing rebuilt', async () => {
    const seen: string[] = [];
    const t0 = Date.now();
    const again = await ensureImage(store, { onProgress: (m) => seen.push(m) });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(again.dir).toBe(first.dir);
    expect(again.manifest.createdAt).toBe(first.manifest.createdAt);
    expect(seen).toEqual([]);
  });

  it('detects a truncated file by its sha256 and rebuilds the image', async () => {
    truncateSync(first.initrd, 1000);
    const seen: string[] = [];
    const rebuilt = await ensureImage(store, { onProgress: (m) => seen.push(m) });
    expect(seen.join('\n')).toMatch(/initrd\.cpio\.lz4 does not match its sha256/);
    expect(rebuilt.dir).toBe(first.dir);
    expect(await sha256File(rebuilt.initrd)).toBe(rebuilt.manifest.files['initrd.cpio.lz4']);
    expect(statSync(rebuilt.initrd).size).toBeGreaterThan(1000);
  });

  it('detects a same-size corruption of the kernel too', async () => {
    const image = await ensureImage(store);
    const size = statSync(image.kernel).size;
    const bytes = readFileSync(image.kernel);
    bytes[size >> 1] = (bytes[size >> 1] ?? 0) ^ 0xff;
    writeFileSync(image.kernel, bytes);
    const seen: string[] = [];
    const rebuilt = await ensureImage(store, { onProgress: (m) => seen.push(m) });
    expect(seen.join('\n')).toMatch(/vmlinux does not match/);
    expect(await sha256File(rebuilt.kernel)).toBe(rebuilt.manifest.files.vmlinux);
  });

  it('rebuilds under a new hash when an input changes (a new installation key)', async () => {
    const before = await ensureImage(store);
    rmSync(join(store.home, 'ssh'), { recursive: true, force: true });
    const after = await ensureImage(store);
    expect(after.dir).not.toBe(before.dir);
    expect(after.manifest.inputs.authorizedKey).not.toBe(before.manifest.inputs.authorizedKey);
    expect(existsSync(before.dir)).toBe(false); // the stale build was cleaned away
  });

  it('refuses to unpack something that is not an LZ4 kernel', async () => {
    const junk = join(store.home, 'junk');
    writeFileSync(junk, Buffer.alloc(4096, 7));
    await expect(extractVmlinux(junk, join(store.home, 'out'))).rejects.toSatisfy((e) => isFleetboxError(e, 'io'));
  });
});

describe.skipIf(skip)('installation SSH key', () => {
  it('is one ed25519 pair per store, private key 0600, stable across calls', async () => {
    const store = new Store(mkdtempSync('/tmp/fbx-k-')).ensure();
    try {
      const a = await ensureSshKey(store);
      const b = await ensureSshKey(store);
      expect(a).toEqual(b);
      expect(a.publicKeyText).toMatch(/^ssh-ed25519 /);
      expect(statSync(a.privateKey).mode & 0o777).toBe(0o600);
      expect(a.privateKey.startsWith(store.home)).toBe(true);
    } finally {
      rmSync(store.home, { recursive: true, force: true });
    }
  });
});
