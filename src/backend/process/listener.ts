import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cgroupPids } from '../../host/cgroup.js';
import { processGroup } from '../../host/proc.js';

const LISTEN = '0A';

/** An IPv4 address as /proc/net/tcp writes it: the four bytes in host (little-endian) order, hex. */
function procHex(ip: string): string {
  return ip
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
}

/** Listening sockets by "<address hex>:<port>", read at most once per TABLE_TTL_MS for all members. */
const TABLE_TTL_MS = 40;
let table: { at: number; listening: Map<string, string[]> } | undefined;

function listeningTable(maxAgeMs: number): Map<string, string[]> {
  const now = performance.now();
  if (table && now - table.at < maxAgeMs) return table.listening;
  const listening = new Map<string, string[]>();
  for (const path of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [address, portHex] = (fields[1] ?? '').split(':');
      if (fields[3] !== LISTEN || !address || !fields[9]) continue;
      const key = `${address}:${Number.parseInt(portHex ?? '', 16)}`;
      const inodes = listening.get(key);
      if (inodes) inodes.push(fields[9]);
      else listening.set(key, [fields[9]]);
    }
  }
  table = { at: now, listening };
  return listening;
}

/**
 * Inodes of the TCP sockets listening on `port` that a connection to `ip` can reach. The kernel's
 * tables are read once for every member probing within TABLE_TTL_MS: a hundred members starting
 * at once would otherwise read them thousands of times a second.
 */
export function listeningInodes(ip: string, port: number, maxAgeMs = TABLE_TTL_MS): Set<string> {
  const v4 = procHex(ip);
  const listening = listeningTable(maxAgeMs);
  const inodes = new Set<string>();
  for (const address of [v4, '00000000', `0000000000000000FFFF0000${v4}`, '0'.repeat(32)]) {
    for (const inode of listening.get(`${address}:${port}`) ?? []) inodes.add(inode);
  }
  return inodes;
}

/** A listening socket and where a member's process holds it. */
export interface HeldSocket {
  pid: number;
  fd: string;
  inode: string;
}

/** Whether the process still holds that very socket at that descriptor: one readlink. */
export function stillHeld(held: HeldSocket): boolean {
  try {
    return readlinkSync(`/proc/${held.pid}/fd/${held.fd}`) === `socket:[${held.inode}]`;
  } catch {
    return false;
  }
}

/**
 * The socket listening where the member's address and port lead that one of the
 * member's own processes holds, or undefined. Something else answering there (a stray server on
 * 0.0.0.0:port) is not this member being ready: the member itself may be dying of EADDRINUSE at
 * that very moment.
 */
export function ownedListener(member: { pid: number; cgroup?: string | undefined }, ip: string, port: number, maxAgeMs = TABLE_TTL_MS): HeldSocket | undefined {
  const inodes = listeningInodes(ip, port, maxAgeMs);
  if (inodes.size === 0) return undefined;
  const pids = member.cgroup ? cgroupPids(member.cgroup) : processGroup(member.pid);
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match?.[1] && inodes.has(match[1])) return { pid, fd, inode: match[1] };
      } catch {
        // closed while we looked
      }
    }
  }
  return undefined;
}

export function memberOwnsListener(member: { pid: number; cgroup?: string | undefined }, ip: string, port: number): boolean {
  return ownedListener(member, ip, port) !== undefined;
}
