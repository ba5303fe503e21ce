import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FleetboxError } from '../protocol/errors.js';
import { validateName } from './names.js';

/** sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH = 107;

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FLEETBOX_HOME || join(homedir(), '.fleetbox'));
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * Every path of the on-disk database (DESIGN §3) in one place. Names are validated before they
 * become path segments, so nothing here can point outside the store.
 */
export class Store {
  readonly home: string;

  constructor(home: string = defaultHome()) {
    this.home = resolve(home);
  }

  /**
   * Creates the store directories (0700) if needed; cheap when they exist. Refuses, before
   * anything is written, a home whose socket paths would be too long and a store that another
   * user owns or could write: its config.json `cmd` would run with our rights (ssh's StrictModes).
   */
  ensure(): this {
    this.socketPath(`${'0'.repeat(16)}.sock`);
    for (const dir of [this.home, this.clustersDir, this.runDir, this.imagesDir, this.logsDir]) {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
        throw new FleetboxError('io', `cannot create ${dir} (${code}): FLEETBOX_HOME must be a folder you can write`, { cause: error });
      }
      this.refuseForeign(dir);
    }
    if ((statSync(this.home).mode & 0o777) !== 0o700) chmodSync(this.home, 0o700);
    return this;
  }

  private refuseForeign(dir: string): void {
    const uid = process.getuid?.();
    // The home itself may be a link the user made (~/.fleetbox → elsewhere), and so may the image
    // cache (shared between stores; its files are verified against their manifest): what they
    // point to counts. Anywhere else a link is refused.
    const stat = dir === this.home || dir === this.imagesDir ? statSync(dir) : lstatSync(dir);
    if (!stat.isDirectory()) throw new FleetboxError('usage', `${dir} is not a directory; fleetbox does not follow links in its store: remove it`);
    if (uid !== undefined && stat.uid !== uid) {
      throw new FleetboxError('usage', `${dir} belongs to uid ${stat.uid}, not to you (uid ${uid}): fleetbox refuses a store another user could have written; set FLEETBOX_HOME to a folder of your own`);
    }
    if (dir !== this.home && (stat.mode & 0o022) !== 0) {
      throw new FleetboxError('usage', `${dir} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)}): run 'chmod 700 ${dir}' or use another FLEETBOX_HOME`);
    }
  }

  get clustersDir(): string {
    return join(this.home, 'clusters');
  }
  get runDir(): string {
    return join(this.home, 'run');
  }
  get imagesDir(): string {
    return join(this.home, 'images');
  }
  get logsDir(): string {
    return join(this.home, 'logs');
  }
  /** Saved clusters (`fleetbox snapshot`): one folder each, made whole or not at all. */
  get snapshotsDir(): string {
    return join(this.home, 'snapshots');
  }
  snapshotDir(name: string): string {
    return join(this.snapshotsDir, validateName(name, 'snapshot name'));
  }

  clusterDir(cluster: string): string {
    return join(this.clustersDir, validateName(cluster, 'cluster name'));
  }
  networkPath(cluster: string): string {
    return join(this.clusterDir(cluster), 'network.json');
  }
  memberDir(cluster: string, member: string): string {
    return join(this.clusterDir(cluster), validateName(member, 'member name'));
  }
  configPath(cluster: string, member: string): string {
    return join(this.memberDir(cluster, member), 'config.json');
  }
  statePath(cluster: string, member: string): string {
    return join(this.memberDir(cluster, member), 'state.json');
  }
  pidfilePath(cluster: string, member: string): string {
    return join(this.memberDir(cluster, member), 'holder.pid');
  }
  serialLogPath(cluster: string, member: string): string {
    return join(this.memberDir(cluster, member), 'serial.log');
  }
  holderLogPath(cluster: string): string {
    return join(this.logsDir, `holder-${validateName(cluster, 'cluster name')}.log`);
  }
  /** Serialises `up`/`down`/`rm` of one cluster across processes (proper-lockfile directory). */
  clusterLockPath(cluster: string): string {
    return join(this.runDir, `${validateName(cluster, 'cluster name')}.lock`);
  }
  memberSocketPath(member: string): string {
    return this.socketPath(`${shortHash(validateName(member, 'member name'))}.sock`);
  }
  /** A qemu member's QMP socket (the backend listens, the health checker asks). */
  qmpSocketPath(member: string): string {
    return this.socketPath(`${shortHash(validateName(member, 'member name'))}.qmp`);
  }
  /** A qemu member's SSH connection-sharing socket (the holder's master; execs reuse it). */
  /** A qemu member's virtiofsd socket (the file server of its host root and shares). */
  /** The member's guest agent channel (QEMU listens; the holder is its only client). */
  agentSocketPath(member: string): string {
    return this.socketPath(`${shortHash(validateName(member, 'member name'))}.qga`);
  }
  fsSocketPath(member: string): string {
    return this.socketPath(`${shortHash(validateName(member, 'member name'))}.vfs`);
  }
  controlSocketPath(cluster: string): string {
    return this.socketPath(`${shortHash(validateName(cluster, 'cluster name'))}.ctl`);
  }

  private socketPath(file: string): string {
    const path = join(this.runDir, file);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new FleetboxError(
        'path_too_long',
        `socket path ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of unix sockets: set FLEETBOX_HOME to a shorter directory`,
      );
    }
    return path;
  }
}
