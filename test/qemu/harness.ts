import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, BackendContext, MemberHandle } from '../../dist/backend/types.js';
import type { Logger } from '../../dist/host/logger.js';
import type { ClusterNetwork } from '../../dist/net/types.js';
import { Store } from '../../dist/store/layout.js';
import { MemberConfigSchema, type MemberConfig } from '../../dist/store/member-config.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { cgroup2Mount, destroyCgroupSync, memberCgroupName } from '../../dist/host/cgroup.js';
import { namespaceExists } from '../../dist/net/bridge.js';

/**
 * Images are cached in one shared store so the suite downloads the kernel and builds the image
 * once; every test gets its own short-pathed store whose images/ and ssh/ point there.
 */
export const SHARED_HOME = '/tmp/fbx-test-images';

/** Why real VMs cannot boot here, or undefined when they can (the only reason to skip). */
export function cannotBootVms(): string | undefined {
  if (process.platform !== 'linux') return `VMs need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const tool of ['/usr/bin/qemu-system-x86_64', '/usr/bin/setpriv', '/usr/sbin/qemu-ga', '/usr/bin/lz4', '/usr/bin/cpio']) {
    try {
      accessSync(tool, constants.X_OK);
    } catch {
      return `${tool} is not installed (run: fleetbox setup --yes)`;
    }
  }
  return undefined;
}

export function cannotUseNamespaces(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'ip (iproute2) is not installed';
  }
  return undefined;
}

export function reportSkip(what: string, reason: string | undefined): boolean {
  if (reason) console.warn(`skipping ${what}: ${reason}`);
  return reason !== undefined;
}

/** A fresh store under /tmp (unix socket paths must stay under 107 bytes) sharing the image cache. */
export function vmStore(): Store {
  const shared = new Store(SHARED_HOME).ensure();
  mkdirSync(join(shared.home, 'ssh'), { recursive: true, mode: 0o700 });
  const home = mkdtempSync('/tmp/fbx-q-');
  symlinkSync(shared.imagesDir, join(home, 'images'));
  symlinkSync(join(shared.home, 'ssh'), join(home, 'ssh'));
  return new Store(home).ensure();
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  event: string;
  fields?: Record<string, unknown>;
}

export function memoryLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  return {
    lines,
    info: (event, fields) => void lines.push({ level: 'info', event, fields }),
    warn: (event, fields) => void lines.push({ level: 'warn', event, fields }),
    error: (event, fields) => void lines.push({ level: 'error', event, fields }),
  };
}

export function memberConfig(cluster: string, name: string, overrides: Partial<MemberConfig> = {}): MemberConfig {
  // These tests are of the boot itself (backend level): members boot unless a test says otherwise.
  return MemberConfigSchema.parse({ name, cluster, backend: 'qemu', fast: false, createdAt: new Date().toISOString(), ...overrides });
}

export interface Booted {
  ctx: BackendContext;
  handle: MemberHandle;
  /** ms from start() to probe() === true. */
  bootMs: number;
}

/**
 * Boots one member the way the holder does: attach → prepare → start → probe until true. Fails
 * (with the console) when the process exits or the deadline passes.
 */
export async function bootMember(
  backend: Backend,
  network: ClusterNetwork,
  store: Store,
  config: MemberConfig,
  log: Logger,
  started: MemberHandle[],
  deadlineMs = 60_000,
): Promise<Booted> {
  mkdirSync(store.memberDir(config.cluster, config.name), { recursive: true, mode: 0o700 });
  const memberNetwork = await network.attach(config.name);
  const ctx: BackendContext = { store, config, network: memberNetwork, log, signal: new AbortController().signal };
  await backend.prepare(ctx, () => {});
  const t0 = Date.now();
  const handle = await backend.start(ctx);
  started.push(handle);
  let exited = false;
  void handle.exited.then(() => (exited = true));
  while (!(await backend.probe(ctx, handle))) {
    if (exited) throw new Error(`${config.name} exited during boot:\n${backend.diagnose(ctx)}`);
    if (Date.now() - t0 > deadlineMs) throw new Error(`${config.name} not ready in ${deadlineMs} ms:\n${backend.diagnose(ctx)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { ctx, handle, bootMs: Date.now() - t0 };
}

/** Kills whatever a test left running and removes its store and network. */
export async function cleanup(store: Store | undefined, handles: MemberHandle[], networks: ClusterNetwork[]): Promise<void> {
  for (const handle of handles.splice(0)) {
    if (isProcessAlive(handle.pid)) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await handle.exited;
  }
  for (const network of networks.splice(0)) await network.close().catch(() => undefined);
  // These tests drive the backend without a holder: what a holder's stop would remove (the
  // members' cgroups) is removed here.
  const mount = cgroup2Mount();
  if (store && mount) {
    const prefix = memberCgroupName(store.home, '');
    for (const entry of readdirSync(mount)) if (entry.startsWith(prefix)) destroyCgroupSync(join(mount, entry));
  }
  if (store && existsSync(store.home)) rmSync(store.home, { recursive: true, force: true });
}

export { namespaceExists };
