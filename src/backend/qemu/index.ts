import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureImage, type GuestImage } from '../../image/ensure-image.js';
import { findBinary } from '../../host/binaries.js';
import { ensureSshKey } from '../../image/ssh-key.js';
import { openBridgeNetwork } from '../../net/bridge.js';
import { crashPoint } from '../../protocol/crash-point.js';
import { FleetboxError } from '../../protocol/errors.js';
import type { Store } from '../../store/layout.js';
import type { Logger } from '../../host/logger.js';
import type { ClusterNetwork, NetworkPlan } from '../../net/types.js';
import type { Backend, BackendContext, BackendSettings, MemberHandle } from '../types.js';
import { bulkSocketOf, execSocketsOf, kernelCommandLine, portSocketsOf, qemuArguments } from './command-line.js';
import { BulkPort } from './bulk.js';
import { ensureDisk } from './disk.js';
import { GuestAgent } from './agent.js';
import { agentExec, agentKill } from './agent-exec.js';
import { ExecPorts } from './exec-port.js';
import { shapeScript, verifyShape } from './net-shape.js';
import { cloneArguments, ensureTemplate, restoreClone, type CloneTarget, type Template, type TemplateSpec } from './template.js';
import { agentHealthChecks } from './agent-health.js';
import { hypervisorCheck } from './hypervisor-check.js';
import { agentReadFile, agentWriteFile } from './agent-files.js';
import { hostCpuKhz } from './host-cpu.js';
import { chooseAccelerator } from './kvm-probe.js';
import { diskPath, qemuLogPath, qmpSocketPath } from './paths.js';
import { QmpClient } from './qmp.js';
import { readTail } from '../../host/tail.js';
import { consoleTail, readConsole } from './serial-console.js';
import { enterCgroup } from '../../host/cgroup.js';
import { signalRecorded } from '../../host/proc.js';
import { checkShares } from '../../store/shares.js';
import { findVirtiofsd, startFileServer, type FileServer, type ServedRoot } from './file-server.js';
import { readRootImage } from '../../store/root-images.js';
import { launchArgv, QEMU_BINARY, spawnQemu } from './spawn-qemu.js';
import { stopQemu } from './stop.js';
import { cannotSave, findRestorable, restoreMember, saveMember, type Launched, type Restorable } from './saved-member.js';

export interface QemuBackendOptions extends BackendSettings {
  /** Extra kernel command line words, appended last (tests use them to make a guest fail). */
  extraKernelArgs?: readonly string[];
}

/** Host tools a qemu member needs at start and probe time (the image build checks its own). */
const RUNTIME_TOOLS = [
  [QEMU_BINARY, 'qemu-system-x86'],
  ['setpriv', 'util-linux'],
  ['ip', 'iproute2'],
  ['ssh', 'openssh-client'],
] as const;

function checkRuntimeTools(): void {
  for (const [tool, pkg] of RUNTIME_TOOLS) {
    if (!findBinary(tool)) throw new FleetboxError('missing_prerequisite', `${tool} (package ${pkg}) is not installed; run: fleetbox setup --yes`);
  }
}

/** A QMP socket that answers belongs to a live QEMU: never unlink it. A dead one is removed. */
async function clearStaleQmpSocket(path: string, member: string): Promise<void> {
  if (!existsSync(path)) return;
  let live = false;
  try {
    const client = await QmpClient.connect(path, 500);
    client.close();
    live = true;
  } catch {
    live = false;
  }
  if (live) throw new FleetboxError('already_running', `a QEMU for ${member} still answers on ${path}; stop it with 'fleetbox down ${member}'`);
  rmSync(path, { force: true });
}

function memberPaths(ctx: BackendContext) {
  const { store, config } = ctx;
  const dir = store.memberDir(config.cluster, config.name);
  return {
    fsSocket: store.fsSocketPath(config.name),
    fsLog: join(dir, 'virtiofsd.log'),
    fsTop: join(dir, 'files'),
    fsEtc: join(dir, 'guest-etc'),
    serial: store.serialLogPath(config.cluster, config.name),
    qmp: qmpSocketPath(store, config.name),
    agent: store.agentSocketPath(config.name),
    qemuLog: qemuLogPath(store, config.cluster, config.name),
    disk: diskPath(store, config.cluster, config.name),
    dir: store.memberDir(config.cluster, config.name),
  };
}

/** Sends `command` over QMP and checks that the VM then reports `expected` (verified, not assumed). */
async function runStatus(qmpSocket: string, command: 'stop' | 'cont', expected: string, member: string): Promise<void> {
  const client = await QmpClient.connect(qmpSocket, 5_000);
  try {
    await client.execute(command);
    const status = (await client.execute('query-status')) as { status?: string };
    if (status.status !== expected) throw new FleetboxError('io', `${member}: QEMU reports ${status.status ?? 'nothing'} after ${command}, not ${expected}`);
  } finally {
    client.close();
  }
}

/** A member served by a file server: its root is the host's or an image's, or it has shares. */
function needsFileServer(ctx: BackendContext): boolean {
  return ctx.config.rootfs !== 'initramfs' || ctx.config.shares.length > 0;
}

/** What the member's file server serves as its root; checked at each boot. */
function servedRoot(ctx: BackendContext): ServedRoot | undefined {
  const { config, store } = ctx;
  if (config.rootfs === 'host') return { kind: 'host' };
  if (config.rootfs !== 'image') return undefined;
  const image = config.image === undefined ? undefined : readRootImage(store, config.image);
  if (!image) throw new FleetboxError('boot_failed', `image ${config.image ?? '(none)'} of ${config.name} is gone; build it again: fleetbox image build ${config.image ?? 'NAME'} --packages …`);
  return { kind: 'image', name: image.name, dir: image.root };
}

interface Prepared {
  image: GuestImage;
  accel: 'kvm' | 'tcg';
  /** `fast` members: the template they are cloned from. */
  template?: { template: Template; spec: TemplateSpec };
  /** Members of a fork (`up --from`): the saved member they start from. */
  restore?: Restorable;
}

/** Real microVMs: QEMU microvm with the fleetbox guest image on the cluster's bridge (DESIGN §6). */
export function createQemuBackend(options: QemuBackendOptions = {}): Backend {
  const portsOff = options.execPorts === false;
  /** Each started guest's agent connection (the holder is its only client), closed at stop. */
  const agents = new Map<string, GuestAgent>();
  const agentOf = (ctx: BackendContext): GuestAgent => {
    const agent = agents.get(`${ctx.config.cluster}/${ctx.config.name}`);
    if (!agent) throw new FleetboxError('not_running', `${ctx.config.name} is not running here`);
    return agent;
  };
  /**
   * Each started guest's raw ports: the bulk port (copies) and the exec ports (commands),
   * connected once it runs; the agent takes what they cannot. Dropped when the guest is gone.
   */
  const rawPorts = new Map<string, { bulk: BulkPort; exec: ExecPorts }>();
  const portsOf = (ctx: BackendContext): { bulk: BulkPort; exec: ExecPorts } => {
    const key = `${ctx.config.cluster}/${ctx.config.name}`;
    let ports = rawPorts.get(key);
    if (!ports) {
      const { agent } = memberPaths(ctx);
      const member = ctx.config.name;
      ports = {
        bulk: new BulkPort(bulkSocketOf(agent), member, (why) => ctx.log.warn('bulk_port_unusable', { member, why })),
        exec: ExecPorts.at(execSocketsOf(agent), member, (why) => ctx.log.warn('exec_port_unusable', { member, why })),
      };
      rawPorts.set(key, ports);
    }
    return ports;
  };
  const dropPorts = (key: string) => {
    rawPorts.get(key)?.bulk.close();
    rawPorts.get(key)?.exec.close();
    rawPorts.delete(key);
  };
  /** Each running member's file server, and why it ended the member if it did. */
  const fileServers = new Map<string, { server: FileServer; stopping: boolean; failure?: string }>();
  /** The image each member prepared with, so start boots exactly what prepare verified. */
  const prepared = new Map<string, Prepared>();
  /** How each running member was launched: what a snapshot of it records. */
  const launched = new Map<string, Launched>();

  const prepare = async (ctx: BackendContext, progress: (message: string) => void): Promise<Prepared> => {
    checkRuntimeTools();
    if (needsFileServer(ctx) && !findVirtiofsd()) {
      throw new FleetboxError('missing_prerequisite', 'virtiofsd (package qemu-system-common) is needed for --rootfs host and --share; run: fleetbox setup --yes');
    }
    const image = await ensureImage(ctx.store, { onProgress: progress, trustRecordedHashes: true });
    await ensureSshKey(ctx.store);
    const verdict = await chooseAccelerator(ctx.store, image, progress, options.accel);
    const entry: Prepared = { image, accel: verdict.accel };
    if (ctx.config.restore) {
      // A fork member restores what it was saved as; checked now, before anything starts.
      entry.restore = findRestorable(ctx.store, ctx.config, image);
      prepared.set(`${ctx.config.cluster}/${ctx.config.name}`, entry);
      return entry;
    }
    // Cloned unless told to boot, whenever the member can be (a clone carries no disk or shares).
    // Kernel arguments of a test change the boot itself: such members always boot.
    if (ctx.config.fast !== false && !needsFileServer(ctx) && ctx.config.diskMiB === 0 && !options.extraKernelArgs?.length) {
      const spec = { image, accel: verdict.accel, cpus: ctx.config.cpus, memoryMiB: ctx.config.memoryMiB };
      try {
        entry.template = { template: await ensureTemplate(ctx.store, spec, ctx.log, progress, { retryFailed: ctx.config.fast === true }), spec };
      } catch (error) {
        // No template, no fast start: the member boots, and the log says why.
        ctx.log.warn('template_unavailable', { member: ctx.config.name, why: (error as Error).message });
        progress(`no template (${(error as Error).message}); booting instead`);
      }
    }
    prepared.set(`${ctx.config.cluster}/${ctx.config.name}`, entry);
    ctx.log.info('qemu_prepared', { member: ctx.config.name, image: image.dir, accel: verdict.accel, why: verdict.reason });
    return entry;
  };

  /**
   * Starts the member as a clone of its template: restored and given its identity, or, when any
   * step fails, nothing left running (the caller boots it instead; the log says why).
   */
  const startClone = async (ctx: BackendContext, entry: NonNullable<Prepared['template']>, prefix: string[], cgroup: string | undefined): Promise<MemberHandle | undefined> => {
    const { config, network } = ctx;
    if (!network.namespace || !network.tap) return undefined;
    const paths = memberPaths(ctx);
    const key = `${config.cluster}/${config.name}`;
    const target: CloneTarget = {
      name: config.name,
      serialLog: paths.serial,
      qmpSocket: paths.qmp,
      agentSocket: paths.agent,
      tap: { ifname: network.tap, mac: network.mac },
      ip: network.ip,
      prefix: network.prefix,
      gateway: network.gateway,
    };
    const started = Date.now();
    const handle = await spawnQemu(launchArgv(cloneArguments(entry.template, entry.spec, target), network.namespace, prefix), paths.qemuLog, paths.dir, cgroup);
    const agent = new GuestAgent(paths.agent, config.name);
    agents.set(key, agent);
    try {
      crashPoint('holder-mid-clone');
      await restoreClone(entry.template, target, handle, agent);
      ctx.log.info('qemu_started', { member: config.name, pid: handle.pid, accel: entry.spec.accel, ip: network.ip, tap: network.tap, clone: entry.template.manifest.key, restoreMs: Date.now() - started });
      launched.set(key, { accel: entry.spec.accel, cmdline: entry.template.manifest.bootCmdline, memoryBackend: true, image: entry.spec.image, mac: network.mac, disk: false });
      return handle;
    } catch (error) {
      ctx.log.warn('template_fallback', { member: config.name, template: entry.template.manifest.key, why: (error as Error).message });
      agent.close();
      agents.delete(key);
      signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
      await handle.exited;
      rmSync(paths.serial, { force: true });
      await clearStaleQmpSocket(paths.qmp, config.name);
      return undefined;
    }
  };

  return {
    kind: 'qemu',

    openNetwork(store: Store, cluster: string, log: Logger, plan?: NetworkPlan): Promise<ClusterNetwork> {
      return openBridgeNetwork(store, cluster, log, plan);
    },

    async prepare(ctx, progress) {
      await prepare(ctx, progress);
    },

    async start(ctx): Promise<MemberHandle> {
      const { config, network } = ctx;
      if (!network.namespace || !network.tap) {
        throw new FleetboxError('internal', `${config.name} has no tap in a network namespace; the qemu backend needs a bridge network`);
      }
      // An agent connection of this member's previous boot talks to a guest that is gone.
      agents.get(`${config.cluster}/${config.name}`)?.close();
      agents.delete(`${config.cluster}/${config.name}`);
      dropPorts(`${config.cluster}/${config.name}`);
      const { image, accel, template: entryTemplate, restore } = prepared.get(`${config.cluster}/${config.name}`) ?? (await prepare(ctx, () => {}));
      const paths = memberPaths(ctx);
      await clearStaleQmpSocket(paths.qmp, config.name);
      // A fresh console per boot: a ready marker from the previous run must not count.
      rmSync(paths.serial, { force: true });
      launched.delete(`${config.cluster}/${config.name}`);
      if (restore) {
        const { prefix, cgroup } = enterCgroup(ctx.store.home, config.name);
        const key = `${config.cluster}/${config.name}`;
        const agent = new GuestAgent(paths.agent, config.name);
        agents.set(key, agent);
        const started = Date.now();
        try {
          const handle = await restoreMember(ctx, restore, image, paths, (args) => spawnQemu(launchArgv(args, network.namespace, prefix), paths.qemuLog, paths.dir, cgroup), agent);
          const { record } = restore;
          launched.set(key, { accel: record.accel, cmdline: record.cmdline, memoryBackend: record.memoryBackend, image, mac: record.mac, disk: record.disk });
          ctx.log.info('qemu_started', { member: config.name, pid: handle.pid, accel: record.accel, ip: network.ip, tap: network.tap, snapshot: config.restore?.snapshot, restoreMs: Date.now() - started });
          return handle;
        } catch (error) {
          agent.close();
          agents.delete(key);
          throw error;
        }
      }
      if (config.diskMiB > 0) ensureDisk(paths.disk, config.diskMiB);
      const args = qemuArguments({
        ...(needsFileServer(ctx) && { fileServer: paths.fsSocket }),
        accel,
        cpus: config.cpus,
        memoryMiB: config.memoryMiB,
        kernel: image.kernel,
        initrd: image.initrd,
        cmdline: kernelCommandLine({
          name: config.name,
          network,
          cpuKhz: hostCpuKhz(),
          extra: options.extraKernelArgs,
          root: config.rootfs === 'initramfs' ? undefined : config.rootfs,
          systemd: config.init === 'systemd',
          shares: config.shares,
        }),
        serialLog: paths.serial,
        qmpSocket: paths.qmp,
        agentSocket: paths.agent,
        tap: { ifname: network.tap, mac: network.mac },
        ...(config.diskMiB > 0 && { disk: paths.disk }),
      });
      const { prefix, cgroup } = enterCgroup(ctx.store.home, config.name);
      const key = `${config.cluster}/${config.name}`;
      const cloned = entryTemplate ? await startClone(ctx, entryTemplate, prefix, cgroup) : undefined;
      if (cloned) return cloned;
      const served = fileServers.get(key);
      if (served) signalRecorded(served.server.pid, served.server.startTime, 'SIGKILL');
      fileServers.delete(key);
      if (needsFileServer(ctx)) {
        // Checked again at each boot: a shared folder may have gone since the member was made.
        const shares = checkShares(config.shares, ctx.store.home);
        const plan = { root: servedRoot(ctx), shares, home: ctx.store.home, top: paths.fsTop, etcDir: paths.fsEtc, socket: paths.fsSocket, virtiofsd: findVirtiofsd() ?? 'virtiofsd' };
        const server = await startFileServer(plan, paths.fsLog, prefix, cgroup);
        ctx.log.info('file_server_started', { member: config.name, pid: server.pid, root: plan.root?.kind ?? 'none', shares: shares.length });
        fileServers.set(key, { server, stopping: false });
        crashPoint('holder-after-file-server');
      }
      let handle: MemberHandle;
      try {
        handle = await spawnQemu(launchArgv(args, network.namespace, prefix), paths.qemuLog, paths.dir, cgroup);
      } catch (error) {
        const orphan = fileServers.get(key)?.server;
        if (orphan) signalRecorded(orphan.pid, orphan.startTime, 'SIGKILL');
        fileServers.delete(key);
        throw error;
      }
      ctx.log.info('qemu_started', { member: config.name, pid: handle.pid, accel, ip: network.ip, tap: network.tap });
      agents.set(key, new GuestAgent(paths.agent, config.name));
      launched.set(key, { accel, cmdline: args[args.indexOf('-append') + 1] ?? '', memoryBackend: needsFileServer(ctx), image, mac: network.mac, disk: config.diskMiB > 0 });
      const entry = fileServers.get(key);
      if (!entry) return handle;
      // A member whose file server died has lost its files: end it, and say why.
      void entry.server.exited.then((info) => {
        if (entry.stopping || fileServers.get(key) !== entry) return;
        const how = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
        entry.failure = `its file server (virtiofsd) exited (${how}); the member's ${config.rootfs !== 'initramfs' ? 'root and shares are' : 'shares are'} gone`;
        ctx.log.error('file_server_exited', { member: config.name, code: info.code, signal: info.signal });
        signalRecorded(handle.pid, handle.startTime, 'SIGKILL');
      });
      return {
        ...handle,
        exited: handle.exited.then((info) => (entry.failure ? { ...info, reason: entry.failure } : info)),
      };
    },

    async probe(ctx): Promise<boolean> {
      const { config } = ctx;
      const guest = readConsole(memberPaths(ctx).serial, config.name);
      // A failed init step (network, disk, ssh, agent) will not heal by waiting: fail the boot now.
      if (guest.error) throw new FleetboxError('boot_failed', `${config.name}: ${guest.error}`);
      // The ready marker says SSH listens; the agent answering with the member's own name says
      // this guest (not a stale one) is reachable without any network.
      if (!guest.ready) return false;
      try {
        const answer = await agentOf(ctx).call<{ 'host-name'?: string }>('guest-get-host-name', undefined, 2_000);
        if (answer['host-name'] !== config.name) {
          throw new FleetboxError('boot_failed', `${config.name}: its agent answers as ${JSON.stringify(answer['host-name'])}`);
        }
        // Its bulk loop and exec servers wait without polling once a host is on their ports; the first command finds them open.
        void portsOf(ctx).bulk.open();
        if (!portsOff) portsOf(ctx).exec.open();
        return true;
      } catch (error) {
        if (error instanceof FleetboxError && error.code === 'boot_failed') throw error;
        return false;
      }
    },

    async exec(ctx, command, options) {
      const agent = agentOf(ctx);
      const deadline = Date.now() + options.timeoutMs;
      const onPort = portsOff ? undefined : await portsOf(ctx).exec.run(command, options, (script) => agentKill(agent, script));
      // What was spent finding no port counts: the caller's budget is for the whole command.
      return onPort ?? (await agentExec(agent, ctx.config.name, command, { ...options, timeoutMs: Math.max(1, deadline - Date.now()) }));
    },

    async writeFile(ctx, path, data, append) {
      const agent = agentOf(ctx);
      if (await portsOf(ctx).bulk.write(path, data, append)) return;
      await agentWriteFile(agent, path, data, append);
    },

    async readFile(ctx, path, offset, count) {
      const agent = agentOf(ctx);
      return (await portsOf(ctx).bulk.read(path, offset, count)) ?? (await agentReadFile(agent, path, offset, count));
    },

    async pause(ctx) {
      await runStatus(memberPaths(ctx).qmp, 'stop', 'paused', ctx.config.name);
    },

    async resume(ctx) {
      await runStatus(memberPaths(ctx).qmp, 'cont', 'running', ctx.config.name);
    },

    async shapeNetwork(ctx, shape) {
      const result = await agentExec(agentOf(ctx), ctx.config.name, shapeScript(shape), { timeoutMs: 15_000 });
      verifyShape(ctx.config.name, shape, result);
    },

    cannotSave(ctx) {
      return cannotSave(ctx, launched.get(`${ctx.config.cluster}/${ctx.config.name}`));
    },

    async saveState(ctx, handle, dir) {
      const found = launched.get(`${ctx.config.cluster}/${ctx.config.name}`);
      const why = cannotSave(ctx, found);
      if (why || !found) throw new FleetboxError('usage', why ?? `${ctx.config.name} cannot be saved`);
      const paths = memberPaths(ctx);
      await saveMember(ctx, found, { qmp: paths.qmp, disk: paths.disk }, handle, dir);
    },

    healthChecks: [hypervisorCheck((ctx) => memberPaths(ctx).qmp), ...agentHealthChecks((ctx) => agentOf(ctx))],

    async stop(ctx, handle, timeoutMs): Promise<void> {
      const key = `${ctx.config.cluster}/${ctx.config.name}`;
      agents.get(key)?.close();
      agents.delete(key);
      dropPorts(key);
      launched.delete(key);
      const paths = memberPaths(ctx);
      const served = fileServers.get(key);
      if (served) served.stopping = true;
      const guestReady = readConsole(paths.serial, ctx.config.name).ready;
      try {
        await stopQemu({ handle, qmpSocket: paths.qmp, timeoutMs, log: ctx.log, member: ctx.config.name, guestReady });
      } finally {
        // The cgroup took it along where there is one; without cgroup v2 it is ended here.
        if (served) {
          signalRecorded(served.server.pid, served.server.startTime, 'SIGKILL');
          await served.server.exited;
          fileServers.delete(key);
        }
        rmSync(paths.fsSocket, { force: true });
        rmSync(paths.agent, { force: true });
        for (const socket of portSocketsOf(paths.agent)) rmSync(socket, { force: true });
      }
    },

    diagnose(ctx): string {
      const paths = memberPaths(ctx);
      const serial = consoleTail(paths.serial, 20);
      const qemu = readTail(paths.qemuLog, 4_096).trim();
      const failure = fileServers.get(`${ctx.config.cluster}/${ctx.config.name}`)?.failure;
      const fs = needsFileServer(ctx) ? readTail(paths.fsLog, 2_048).trim() : '';
      return [
        failure && `fleetbox: ${failure}`,
        serial,
        qemu && `qemu: ${qemu.split('\n').slice(-5).join('\nqemu: ')}`,
        fs && `virtiofsd: ${fs.split('\n').slice(-3).join('\nvirtiofsd: ')}`,
      ]
        .filter(Boolean)
        .join('\n');
    },
  };
}

export { qmpSocketPath } from './paths.js';

/** The registry's entry point (backend/index.ts). */
export const createBackend = (settings: BackendSettings): Backend => createQemuBackend(settings);
