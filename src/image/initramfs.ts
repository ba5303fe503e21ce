import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FleetboxError } from '../protocol/errors.js';
import { GUEST_AUTHORIZED_KEYS, GUEST_HOST_KEY, ALL_GUEST_MODULES, EXEC_SERVER, RESEED_PROGRAM } from './guest-init.js';
import { reseedProgram } from './reseed-program.js';
import type { SharedLibrary } from './shared-libraries.js';

export interface InitramfsInputs {
  /** The /init script. */
  init: string;
  /** Static busybox binary. */
  busybox: string;
  /** Its applets (`busybox --list`), linked into /bin. */
  busyboxApplets: readonly string[];
  /** dropbear server binary. */
  dropbear: string;
  /** qemu-ga, the guest agent the holder talks to over virtio-serial. */
  agent: string;
  /** iproute2's tc (busybox's cannot set up netem). */
  tc: string;
  /** The exec ports' server, built by image/exec-server.ts (static). */
  execServer: string;
  /** The shared libraries dropbear, qemu-ga and tc load. */
  libraries: SharedLibrary[];
  /** Directory holding <module>.ko for every ALL_GUEST_MODULES entry. */
  modulesDir: string;
  /** The one public key line guests authorise for root. */
  authorizedKey: string;
  /** dropbear host key file. */
  hostKey: string;
}

function place(root: string, guestPath: string, from: string, mode: number): void {
  const to = join(root, guestPath);
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

function write(root: string, guestPath: string, text: string | Buffer, mode: number): void {
  const to = join(root, guestPath);
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  writeFileSync(to, text, { mode });
  chmodSync(to, mode);
}

/** Every path under `root`, relative, parents before children: the order cpio must archive them in. */
function listTree(root: string, prefix = '.'): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, prefix), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = `${prefix}/${entry.name}`;
    out.push(rel);
    if (entry.isDirectory()) out.push(...listTree(root, rel));
  }
  return out;
}

/** Stages the guest's root file system in `root`. */
function stage(root: string, inputs: InitramfsInputs): void {
  for (const dir of ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'data', 'etc', 'var/log', 'lib/modules']) {
    mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
  }
  write(root, 'init', inputs.init, 0o755);
  place(root, 'bin/busybox', inputs.busybox, 0o755);
  place(root, 'bin/dropbear', inputs.dropbear, 0o755);
  place(root, 'bin/qemu-ga', inputs.agent, 0o755);
  place(root, 'bin/tc', inputs.tc, 0o755);
  place(root, EXEC_SERVER.replace(/^\//, ''), inputs.execServer, 0o755);
  write(root, RESEED_PROGRAM.replace(/^\//, ''), reseedProgram(), 0o700);
  // The kernel runs /init with #!/bin/busybox; /bin/sh is what dropbear starts for a session.
  for (const applet of new Set(['sh', ...inputs.busyboxApplets])) {
    if (/^[\w.[-]+$/.test(applet) && !['busybox', 'dropbear', 'qemu-ga', 'tc'].includes(applet)) symlinkSync('busybox', join(root, 'bin', applet));
  }
  for (const lib of inputs.libraries) place(root, lib.guestPath.replace(/^\//, ''), lib.hostPath, 0o755);
  for (const module of ALL_GUEST_MODULES) {
    const from = join(inputs.modulesDir, `${module.name}.ko`);
    // An offline host's older kernel cache may lack the shaping modules: guests boot without them.
    if (existsSync(from)) place(root, `lib/modules/${module.name}.ko`, from, 0o644);
  }
  write(root, 'etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644);
  write(root, 'etc/group', 'root:x:0:\n', 0o644);
  write(root, 'etc/shells', '/bin/sh\n', 0o644);
  // dropbear refuses keys in a directory others can write to: keep /root and .ssh private.
  mkdirSync(join(root, 'root/.ssh'), { recursive: true });
  chmodSync(join(root, 'root'), 0o700);
  chmodSync(join(root, 'root/.ssh'), 0o700);
  write(root, GUEST_AUTHORIZED_KEYS.replace(/^\//, ''), `${inputs.authorizedKey}\n`, 0o600);
  place(root, GUEST_HOST_KEY.replace(/^\//, ''), inputs.hostKey, 0o600);
}

/** Archives `root` as newc cpio (every file owned by root, whoever builds it), lz4-packed, to `out`. */
async function archive(root: string, out: string): Promise<void> {
  const cpio = spawn('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  cpio.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    cpio.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new FleetboxError('missing_prerequisite', 'cpio is not installed; run: fleetbox setup --yes', { cause: error })
          : error,
      ),
    );
    cpio.once('close', (code) => resolve(code));
  });
  cpio.stdin.end(listTree(root).join('\n') + '\n');
  // lz4 (legacy frame, the one the kernel reads): under emulation the guest kernel unpacks it
  // several times faster than gzip, and boot time is guest CPU time.
  const lz4 = spawn('lz4', ['-l', '-9', '-q', '-c'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const packed = new Promise<number | null>((resolve, reject) => {
    lz4.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new FleetboxError('missing_prerequisite', 'lz4 is not installed; run: fleetbox setup --yes', { cause: error }) : error),
    );
    lz4.once('close', (c) => resolve(c));
  });
  const [code, lz4Code] = await Promise.all([exited, packed, pipeline(cpio.stdout, lz4.stdin), pipeline(lz4.stdout, createWriteStream(out, { mode: 0o644 }))]);
  if (lz4Code !== 0) throw new FleetboxError('io', `lz4 failed packing the initramfs (exit ${lz4Code})`);
  if (code !== 0) throw new FleetboxError('io', `cpio failed building the initramfs (exit ${code}): ${stderr.trim()}`);
}

/** Builds the guest initramfs (lz4-packed newc cpio) at `out`. */
export async function buildInitramfs(out: string, inputs: InitramfsInputs, scratchParent: string): Promise<void> {
  const root = mkdtempSync(join(scratchParent, '.initramfs-'));
  try {
    stage(root, inputs);
    await archive(root, out);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
