import { createHash, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { FleetboxError } from '../protocol/errors.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * `Authorization: Bearer <token>` against the configured token in constant time: both sides are
 * hashed first, so neither the content nor the length of the token leaks through timing.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer ([^\s]+)$/.exec(header ?? '');
  const given = match?.[1] ?? '';
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}

/** Loopback needs no token; anything else (0.0.0.0, a LAN address) does. */
export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** Names that always mean this machine. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** A Host name as it appears in the header: lower case, IPv6 literals in brackets. */
export function hostName(name: string): string {
  const lower = name.toLowerCase();
  return lower.includes(':') && !lower.startsWith('[') ? `[${lower}]` : lower;
}

/**
 * The names a request's Host may carry: loopback, the bound address, and what the operator
 * allowed. A wildcard bind is reached through any address of this machine, so those count too.
 */
export function allowedHosts(bind: string, extra: readonly string[], interfaceAddresses: readonly string[]): Set<string> {
  const wildcard = bind === '0.0.0.0' || bind === '::';
  return new Set([...LOOPBACK_HOSTS, bind, ...extra, ...(wildcard ? interfaceAddresses : [])].map(hostName));
}

/**
 * DNS rebinding defence: a page on attacker.example that re-resolves its name to 127.0.0.1 reaches
 * the dashboard with `Host: attacker.example`; only our own names, on our own port, are served.
 * A Host without a port is only ours when we listen on the scheme's default port.
 */
export function hostMatches(header: string | undefined, allowed: ReadonlySet<string>, port: number, defaultPort: number): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(header ?? '');
  if (!match?.[1]) return false;
  const given = match[2] === undefined ? defaultPort : Number(match[2]);
  return given === port && allowed.has(match[1].toLowerCase());
}

/**
 * The token from `--token-file`: one line, no spaces, in a file nobody but its owner can read or
 * write (as ssh insists for keys): a token others can read protects nothing, and one they can
 * write lets them pick it. Checked on the opened descriptor, so a swapped path cannot slip by.
 */
export function readTokenFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new FleetboxError('usage', `cannot read --token-file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FleetboxError('usage', `--token-file ${path} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new FleetboxError('usage', `--token-file ${path} is open to group or others (mode ${mode}); run: chmod 600 ${path}`);
    }
    if (stat.size > 4096) throw new FleetboxError('usage', `--token-file ${path} is larger than 4096 bytes; it must hold one line, the token`);
    const lines = readFileSync(fd, 'utf8').replace(/\r?\n$/, '').split(/\r?\n/);
    const token = lines[0] ?? '';
    if (lines.length !== 1 || !/^\S+$/.test(token)) {
      throw new FleetboxError('usage', `--token-file ${path} must hold the token on one line, without spaces`);
    }
    return token;
  } finally {
    closeSync(fd);
  }
}
