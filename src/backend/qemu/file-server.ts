import { pollUntil } from '../../host/poll.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from '../../host/binaries.js';
import { signalRecorded } from '../../host/proc.js';
import { FleetboxError } from '../../protocol/errors.js';
import type { Share } from '../../store/shares.js';
import type { MemberHandle } from '../types.js';
import { readTail } from '../../host/tail.js';
import { containedArgv, spawnContained } from './spawn-qemu.js';

/*
 * A member's file server: qemu's virtiofsd, serving one read-only tree whose top holds `root/`
 * (the host's root, for --rootfs host) and `share<i>/` (each --share). The tree is assembled
 * by bind mounts inside a mount namespace of its own (`unshare --mount`), so nothing of it is
 * ever visible on the host, and it vanishes with the process. Read-only is enforced there, at
 * the source: the guest's mount flags are a second fence, not the first.
 */

/** Where Debian's qemu-system-common puts virtiofsd (not on PATH). */
const VIRTIOFSD_PLACES = ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd'];

export function findVirtiofsd(): string | undefined {
  return findBinary('virtiofsd') ?? VIRTIOFSD_PLACES.find((path) => existsSync(path));
}

/**
 * Host folders a guest running on the host's root never sees: homes, the host's temporary and
 * log files, its services' state (/var/lib, except dpkg's package database), mail, backups
 * (/var/backups holds copies of the password files), private TLS keys and saved network secrets.
 * Each becomes an empty read-only folder; the guest's overlay can still write there.
 */
export const HIDDEN_DIRS = [
  '/root',
  '/home',
  '/tmp',
  '/var/tmp',
  '/var/log',
  '/var/lib',
  '/var/backups',
  '/var/mail',
  '/var/spool',
  '/srv',
  '/mnt',
  '/media',
  '/lost+found',
  '/etc/ssl/private',
  '/etc/NetworkManager/system-connections',
  '/etc/wpa_supplicant',
  '/etc/credstore',
  '/etc/credstore.encrypted',
];
/** Shown again inside a hidden folder, read-only: what installed software reads, no secrets. */
export const KEPT_DIRS = ['/var/lib/dpkg'];
/**
 * Single files replaced by an empty one: old password hashes and the host's SSH identity
 * (/etc/shadow and /etc/gshadow are replaced by generated ones, see guestAccounts).
 */
export function hiddenFiles(): string[] {
  let hostKeys: string[] = [];
  try {
    hostKeys = readdirSync('/etc/ssh')
      .filter((f) => /^ssh_host_.*_key$/.test(f))
      .map((f) => `/etc/ssh/${f}`);
  } catch {
    // no SSH server on this host
  }
  return ['/etc/shadow-', '/etc/gshadow-', '/etc/security/opasswd', '/etc/ppp/chap-secrets', '/etc/ppp/pap-secrets', ...hostKeys];
}

/** The guest's accounts: the host's system accounts (uid < 1000, nobody), no person's, no password. */
export function guestAccounts(passwd: string, group: string): { passwd: string; group: string; shadow: string; gshadow: string } {
  const system = (id: string | undefined) => id !== undefined && /^\d+$/.test(id) && (Number(id) < 1000 || Number(id) === 65534);
  const users = passwd.split('\n').filter((line) => system(line.split(':')[2]));
  const names = new Set(users.map((line) => line.split(':')[0]));
  if (!names.has('root')) users.unshift('root:x:0:0:root:/root:/bin/sh');
  const groups = group
    .split('\n')
    .filter((line) => system(line.split(':')[2]))
    .map((line) => {
      const fields = line.split(':');
      // A group's member list may name people: keep only the accounts the guest has.
      fields[3] = (fields[3] ?? '').split(',').filter((m) => names.has(m)).join(',');
      return fields.join(':');
    });
  const lines = (list: string[]) => (list.length > 0 ? `${list.join('\n')}\n` : '');
  return {
    passwd: lines(users),
    group: lines(groups),
    // '*': no password works; key logins (dropbear) still do.
    shadow: lines(users.map((line) => `${line.split(':')[0]}:*:19000:0:99999:7:::`)),
    gshadow: lines(groups.map((line) => `${line.split(':')[0]}:*::`)),
  };
}

/** The member's root: the host's (secrets hidden) or an image's tree. */
export type ServedRoot = { kind: 'host' } | { kind: 'image'; name: string; dir: string };

export interface FileServerPlan {
  /** What to serve under root/; nothing for a member with shares only. */
  root?: ServedRoot;
  shares: readonly Share[];
  /** The fleetbox home: hidden from a host root, whatever folder it is in. */
  home: string;
  /** An empty folder the tree is assembled on (in the member's directory). */
  top: string;
  /** Where the generated account files and the empty file for hidden files are written. */
  etcDir: string;
  socket: string;
  virtiofsd: string;
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The shell script, run as the namespace's first process, that assembles the tree and execs
 * virtiofsd. `set -e`: a mask that cannot be mounted stops the server before it serves anything.
 */
export function fileServerScript(plan: FileServerPlan): string {
  const top = quote(plan.top);
  const lines = ['set -e', `mount -t tmpfs -o mode=0755,size=64k fleetbox-files ${top}`];
  const view = (path: string) => quote(`${plan.top}/root${path}`);
  if (plan.root?.kind === 'image') {
    lines.push(`mkdir ${view('')}`, `mount --bind ${quote(plan.root.dir)} ${view('')}`, `mount -o remount,bind,ro ${view('')}`);
  }
  if (plan.root?.kind === 'host') {
    lines.push(`mkdir ${view('')}`, `mount --bind / ${view('')}`, `mount -o remount,bind,ro ${view('')}`);
    // A hidden path that is a link is hidden at its target too: the guest follows the link there.
    const both = (path: string) => [...new Set([path, realOrSelf(path)])];
    for (const dir of [...HIDDEN_DIRS.flatMap(both), ...both(plan.home)]) {
      const keep = KEPT_DIRS.filter((k) => k.startsWith(`${dir}/`) && existsSync(k));
      const mode = dir === '/root' ? '0700' : '0755';
      lines.push(`if [ -d ${view(dir)} ]; then`, `  mount -t tmpfs -o mode=${mode},size=64k fleetbox-hidden ${view(dir)}`);
      for (const kept of keep) {
        lines.push(`  mkdir -p ${view(kept)}`, `  mount --bind ${quote(kept)} ${view(kept)}`, `  mount -o remount,bind,ro ${view(kept)}`);
      }
      lines.push(`  mount -o remount,ro ${view(dir)}`, 'fi');
    }
    const empty = quote(join(plan.etcDir, 'empty'));
    for (const file of hiddenFiles()) lines.push(`if [ -f ${view(file)} ]; then mount --bind ${empty} ${view(file)}; fi`);
    for (const file of ['passwd', 'group', 'shadow', 'gshadow']) {
      const from = quote(join(plan.etcDir, file));
      lines.push(`if [ -f ${view(`/etc/${file}`)} ]; then mount --bind ${from} ${view(`/etc/${file}`)}; mount -o remount,bind,ro ${view(`/etc/${file}`)}; fi`);
    }
  }
  plan.shares.forEach((share, i) => {
    const at = quote(`${plan.top}/share${i}`);
    lines.push(`mkdir ${at}`, `mount --bind ${quote(share.host)} ${at}`);
    if (share.readOnly) lines.push(`mount -o remount,bind,ro ${at}`);
  });
  lines.push(`mount -o remount,ro ${top}`);
  lines.push(`exec ${quote(plan.virtiofsd)} --socket-path=${quote(plan.socket)} -o source=${top} -o cache=always -o sandbox=chroot -o log_level=warn`);
  return lines.join('\n');
}

/** Writes the account files and the empty stand-in the script binds over hidden files. */
export function writeGuestEtc(etcDir: string): void {
  mkdirSync(etcDir, { recursive: true, mode: 0o700 });
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const accounts = guestAccounts(read('/etc/passwd'), read('/etc/group'));
  writeFileSync(join(etcDir, 'passwd'), accounts.passwd, { mode: 0o644 });
  writeFileSync(join(etcDir, 'group'), accounts.group, { mode: 0o644 });
  writeFileSync(join(etcDir, 'shadow'), accounts.shadow, { mode: 0o640 });
  writeFileSync(join(etcDir, 'gshadow'), accounts.gshadow, { mode: 0o640 });
  writeFileSync(join(etcDir, 'empty'), '', { mode: 0o600 });
}

export type FileServer = Pick<MemberHandle, 'pid' | 'startTime' | 'exited'>;

/**
 * Starts the file server the way QEMU is started (spawnContained: it dies with the holder, lives
 * in the member's cgroup where reconcile ends it after a crash), inside a mount namespace of its
 * own. Resolves once its socket exists, so QEMU can connect.
 */
export async function startFileServer(plan: FileServerPlan, logPath: string, cgroupPrefix: readonly string[], cgroup: string | undefined): Promise<FileServer> {
  const unshare = findBinary('unshare');
  if (!unshare) throw new FleetboxError('missing_prerequisite', 'unshare (util-linux) is needed for --rootfs and --share; run: fleetbox setup --yes');
  rmSync(plan.socket, { force: true });
  mkdirSync(plan.top, { recursive: true, mode: 0o700 });
  if (plan.root?.kind === 'host') writeGuestEtc(plan.etcDir);
  const argv = containedArgv([...cgroupPrefix, unshare, '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', fileServerScript(plan)]);
  const server = await spawnContained(argv, logPath, plan.top, cgroup);
  let gone = false;
  void server.exited.then(() => (gone = true));
  const listening = await pollUntil(() => (existsSync(plan.socket) ? true : gone ? false : undefined), 10_000, 5);
  if (listening !== true) {
    const why = readTail(logPath, 2_048).trim().split('\n').slice(-3).join('; ') || (gone ? 'it exited' : 'no socket after 10 s');
    if (!gone) signalRecorded(server.pid, server.startTime, 'SIGKILL');
    await server.exited;
    throw new FleetboxError('boot_failed', `the file server (virtiofsd) for the member's ${plan.root ? 'root' : 'shares'} did not start: ${why}`);
  }
  return server;
}
