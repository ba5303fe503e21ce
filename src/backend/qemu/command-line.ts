import { AGENT_PORT, BULK_PORT, CMDLINE_KEYS, EXEC_PORT_PREFIX, EXEC_PORTS, FS_TAG } from '../../image/guest-init.js';
import type { MemberNetwork } from '../../net/types.js';

export type Accelerator = 'kvm' | 'tcg';

/** A template's MAC (locally administered); each clone sets its own before its link comes up. */
export const TEMPLATE_MAC = '02:fb:00:00:00:01';

/** QEMU option values use ',' as separator; a literal comma in a path is written ',,'. */
export function optionValue(text: string): string {
  return text.replace(/,/g, ',,');
}

/**
 * The guest kernel command line. The base is what booted reliably on the reference machines
 * (DESIGN §6): quiet console on the one UART, no RNG/crypto self-test delays, no mitigations
 * (throw-away guests), `panic=-1` so a panicking guest reboots and `-no-reboot` turns that into
 * a QEMU exit the holder sees at once, and always `tsc_early_khz` (microvm TSC calibration hangs).
 * The second group trims work a throw-away guest does not need; measured under TCG it saves
 * ~0.15 CPU-s and ~0.2 s per boot: microvm has no PCI bus to probe, and Debian's default
 * page zeroing on allocation (init_on_alloc), AppArmor and audit cost emulated instructions.
 */
export function kernelCommandLine(options: {
  name: string;
  network: MemberNetwork | null;
  cpuKhz: number;
  extra?: readonly string[];
  /** The root comes from the file server: the host's or an image's. */
  root?: 'host' | 'image';
  /** PID 1 in the served root: the image's systemd instead of fleetbox's init. */
  systemd?: boolean;
  /** Guest paths and modes of the file server's share0, share1, … */
  shares?: readonly { guest: string; readOnly: boolean }[];
  /** Boot a template for clones: no identity, stop at the template marker. */
  template?: boolean;
}): string {
  const parts = [
    'console=ttyS0',
    'quiet',
    'panic=-1',
    'random.trust_cpu=on',
    '8250.nr_uarts=1',
    'mitigations=off',
    'cryptomgr.notests',
    `tsc_early_khz=${options.cpuKhz}`,
    // Without it the clocksource watchdog (jiffies, the only other clock of a microvm) sees the
    // TSC "skew" whenever emulated timer ticks come late (concurrent boots on a busy host), marks
    // it unstable and the guest falls back to jiffies: 4 ms resolution and a clock that runs slow
    // under load (a 200 ms netem delay measured as 180 ms). The TSC under QEMU is the host's.
    'tsc=reliable',
    'pci=off',
    'init_on_alloc=0',
    'apparmor=0',
    'audit=0',
    'nowatchdog',
    `${CMDLINE_KEYS.name}=${options.name}`,
  ];
  if (options.network) {
    parts.push(`${CMDLINE_KEYS.ip}=${options.network.ip}/${options.network.prefix}`);
    if (options.network.gateway) parts.push(`${CMDLINE_KEYS.gateway}=${options.network.gateway}`);
  }
  if (options.root) parts.push(`${CMDLINE_KEYS.root}=${options.root}`);
  if (options.systemd) parts.push(`${CMDLINE_KEYS.init}=systemd`);
  if (options.template) parts.push(`${CMDLINE_KEYS.template}=1`);
  if (options.shares && options.shares.length > 0) {
    parts.push(`${CMDLINE_KEYS.shares}=${options.shares.map((s) => `${s.guest}:${s.readOnly ? 'ro' : 'rw'}`).join(',')}`);
  }
  return [...parts, ...(options.extra ?? [])].join(' ');
}

export interface QemuInvocation {
  accel: Accelerator;
  cpus: number;
  memoryMiB: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  serialLog: string;
  qmpSocket?: string;
  /** The guest agent's channel: a unix socket QEMU listens on, wired to a virtio-serial port. */
  agentSocket?: string;
  /** The member's tap (inside the namespace QEMU runs in) and MAC. */
  tap?: { ifname: string; mac: string };
  disk?: string;
  /** The member's file server (virtiofsd) socket: guest RAM is then shared memory it can map. */
  fileServer?: string;
  /**
   * Guest RAM in a file: `shared` (a template: what the guest writes goes to the file) or private
   * copy-on-write over it (a clone: the template's pages are shared until written).
   */
  memoryFile?: { path: string; shared: boolean };
  /** A network device on a hub with nothing else on it (a template's: clones restore its state). */
  isolatedNic?: boolean;
  /**
   * Guest RAM as a named memory backend of plain anonymous memory: a member restored from a
   * snapshot of a clone, whose RAM was a named backend too (the names must match to restore).
   */
  memoryRam?: boolean;
  /** Wait for an incoming migration (a clone restores a template's state; QMP migrate-incoming). */
  incoming?: boolean;
}

/** The bulk port's socket sits beside the agent's: `<x>.qga` → `<x>.blk`. */
export function bulkSocketOf(agentSocket: string): string {
  return agentSocket.replace(/\.[^./]*$/, '') + '.blk';
}

/** Exec port <k>'s socket sits beside the agent's too: `<x>.qga` → `<x>.ex<k>`. */
export function execSocketOf(agentSocket: string, k: number): string {
  return agentSocket.replace(/\.[^./]*$/, '') + `.ex${k}`;
}

/** The exec ports' sockets, in port order. */
export function execSocketsOf(agentSocket: string): string[] {
  return Array.from({ length: EXEC_PORTS }, (_, k) => execSocketOf(agentSocket, k));
}

/** Every raw port socket beside an agent socket (removed with it when the member stops). */
export function portSocketsOf(agentSocket: string): string[] {
  return [bulkSocketOf(agentSocket), ...execSocketsOf(agentSocket)];
}

/** Arguments of qemu-system-x86_64 for one microVM member. */
export function qemuArguments(vm: QemuInvocation): string[] {
  const args = [
    '-M', vm.fileServer || vm.memoryFile || vm.memoryRam ? 'microvm,memory-backend=mem' : 'microvm',
    '-accel', vm.accel,
    ...(vm.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(vm.memoryMiB),
    '-smp', String(vm.cpus),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-no-reboot',
    '-kernel', vm.kernel,
    '-initrd', vm.initrd,
    '-append', vm.cmdline,
    '-serial', `file:${optionValue(vm.serialLog)}`,
    // Entropy for the guest's first getrandom() (dropbear) without waiting on jitter.
    '-device', 'virtio-rng-device',
  ];
  if (vm.fileServer) {
    args.push(
      '-object', `memory-backend-memfd,id=mem,size=${vm.memoryMiB}M,share=on`,
      // vhost-user devices (virtiofsd) cannot speak legacy virtio-mmio; the guest's other
      // virtio drivers speak both.
      '-global', 'virtio-mmio.force-legacy=false',
      '-chardev', `socket,id=fs0,path=${optionValue(vm.fileServer)}`,
      '-device', `vhost-user-fs-device,chardev=fs0,tag=${FS_TAG}`,
    );
  }
  if (vm.memoryFile) {
    args.push('-object', `memory-backend-file,id=mem,size=${vm.memoryMiB}M,mem-path=${optionValue(vm.memoryFile.path)},share=${vm.memoryFile.shared ? 'on' : 'off'}`);
  }
  if (vm.memoryRam) args.push('-object', `memory-backend-ram,id=mem,size=${vm.memoryMiB}M`);
  if (vm.qmpSocket) args.push('-qmp', `unix:${optionValue(vm.qmpSocket)},server=on,wait=off`);
  const agentSocket = vm.agentSocket;
  if (agentSocket) {
    args.push(
      '-device', 'virtio-serial-device',
      '-chardev', `socket,id=agent0,path=${optionValue(agentSocket)},server=on,wait=off`,
      '-device', `virtserialport,chardev=agent0,name=${AGENT_PORT}`,
      // Bulk bytes (copies) beside the agent, raw: see bulk.ts.
      '-chardev', `socket,id=bulk0,path=${optionValue(bulkSocketOf(agentSocket))},server=on,wait=off`,
      '-device', `virtserialport,chardev=bulk0,name=${BULK_PORT}`,
      // Commands without the agent, one server per port: see exec-port.ts.
      ...Array.from({ length: EXEC_PORTS }, (_, k) => [
        '-chardev', `socket,id=exec${k},path=${optionValue(execSocketOf(agentSocket, k))},server=on,wait=off`,
        '-device', `virtserialport,chardev=exec${k},name=${EXEC_PORT_PREFIX}${k}`,
      ]).flat(),
    );
  }
  if (vm.tap) {
    args.push(
      '-netdev', `tap,id=net0,ifname=${vm.tap.ifname},script=no,downscript=no`,
      '-device', `virtio-net-device,netdev=net0,mac=${vm.tap.mac}`,
    );
  } else if (vm.isolatedNic) {
    // The same device as a member's, on a hub port of its own: nothing it sends goes anywhere.
    args.push('-netdev', 'hubport,id=net0,hubid=0', '-device', `virtio-net-device,netdev=net0,mac=${TEMPLATE_MAC}`);
  }
  if (vm.disk) {
    args.push(
      '-drive', `id=disk0,file=${optionValue(vm.disk)},format=raw,if=none`,
      '-device', 'virtio-blk-device,drive=disk0',
    );
  }
  if (vm.incoming) args.push('-incoming', 'defer');
  return args;
}
