import { pollUntil } from './poll.js';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcStat } from './proc.js';

/**
 * Containment of member processes in cgroup v2: a process can leave its process group with
 * setsid, but never its cgroup, and `cgroup.kill` ends every process in one at once. The v2
 * hierarchy is found from mountinfo (hybrid machines mount it at /sys/fs/cgroup/unified).
 */
export function cgroup2Mount(): string | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [mountFields, fsFields] = line.split(' - ');
    if (!mountFields || !fsFields?.startsWith('cgroup2 ')) continue;
    const mountPoint = mountFields.split(' ')[4];
    if (mountPoint) return mountPoint.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** clusters of different stores never share a cgroup: the store's home is in the name. */
export function memberCgroupName(home: string, member: string): string {
  return `fleetbox-${createHash('sha256').update(home).digest('hex').slice(0, 12)}-${member}`;
}

/** Where the member's cgroup is (whether or not it exists), or undefined without cgroup v2. */
export function memberCgroupPath(home: string, member: string): string | undefined {
  const mount = cgroup2Mount();
  return mount ? join(mount, memberCgroupName(home, member)) : undefined;
}

/** Creates (or reuses) the member's cgroup; undefined where cgroup v2 cannot be written (not root). */
export function createCgroup(home: string, member: string): string | undefined {
  const path = memberCgroupPath(home, member);
  if (!path) return undefined;
  try {
    mkdirSync(path, { recursive: true });
    // cgroup.kill came with Linux 5.14; without it the cgroup cannot end its processes.
    return existsSync(join(path, 'cgroup.kill')) ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An argv prefix that moves the process into the member's cgroup and then execs the rest, so
 * every process the member ever starts (setsid or not) is in there for stop and reconcile to
 * end. The cgroup's path is derived from the store and the member, so reconcile finds it even
 * when the holder died before it could record the member's PID. Empty without cgroup v2. It goes
 * after `setpriv --pdeathsig`, so the death signal is set as early as it was without it.
 */
export function enterCgroup(home: string, member: string): { prefix: string[]; cgroup: string | undefined } {
  const cgroup = createCgroup(home, member);
  if (!cgroup) return { prefix: [], cgroup: undefined };
  return { prefix: ['/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup], cgroup };
}

/**
 * Resolves once `pid` is in `cgroup` (or has exited, or `timeoutMs` passed). The cgroup step runs
 * after `setpriv --pdeathsig`, so from then on the member dies with its holder: a start that
 * returned before that left a window in which a SIGKILLed holder orphaned its member for good
 * (the reliability loop caught it at the holder-mid-boot crash point).
 */
export async function enteredCgroup(cgroup: string, pid: number, exited: Promise<unknown>, timeoutMs = 2_000): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  return (await pollUntil(() => (cgroupPids(cgroup).includes(pid) ? true : gone ? false : undefined), timeoutMs, 2)) ?? false;
}

/** PIDs in the cgroup (empty when it is gone). */
export function cgroupPids(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Ends every process in the cgroup and removes it once empty. Returns false if processes were
 * still there at the deadline (the caller logs it; the next reconcile tries again).
 */
export async function destroyCgroup(path: string, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  if (!killCgroup(path)) return true; // gone already
  let nextKill = Date.now() + 1_000;
  while (cgroupPids(path).length > 0) {
    if (Date.now() > deadline) return false;
    // Again now and then: on a loaded machine a process seen mid-fork has been found alive after
    // the first kill (its cgroup stayed populated and could not be removed).
    if (Date.now() > nextKill) {
      killCgroup(path);
      nextKill = Date.now() + 1_000;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  try {
    rmdirSync(path);
  } catch {
    // raced with another cleanup
  }
  return true;
}

function killCgroup(path: string): boolean {
  try {
    writeFileSync(join(path, 'cgroup.kill'), '1');
    return true;
  } catch {
    return false;
  }
}

/** The synchronous form for reconcile: kill now, remove the directory if it emptied in time. */
export function destroyCgroupSync(path: string): number[] {
  const pids = cgroupPids(path);
  if (!killCgroup(path)) return [];
  const deadline = Date.now() + 5_000;
  let nextKill = Date.now() + 500;
  while (cgroupPids(path).length > 0 && Date.now() < deadline) {
    // cgroup.kill delivers SIGKILL synchronously; the exits usually complete within microseconds.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    if (Date.now() > nextKill) {
      killCgroup(path);
      nextKill = Date.now() + 500;
    }
  }
  try {
    rmdirSync(path);
  } catch {
    // still populated or already gone; the next reconcile tries again
  }
  return pids;
}

/** After a member's own process is gone: end and remove its cgroup, logging one that would not empty. */
export async function endCgroup(
  ctx: { log: { warn(event: string, fields?: Record<string, unknown>): void }; config: { name: string } },
  handle: { cgroup?: string | undefined },
): Promise<void> {
  if (handle.cgroup && !(await destroyCgroup(handle.cgroup))) {
    const left = cgroupPids(handle.cgroup).map((pid) => {
      const stat = readProcStat(pid);
      return `${pid} ${stat ? `(${stat.comm}) ${stat.state}` : 'gone'}`;
    });
    ctx.log.warn('cgroup_not_empty', { member: ctx.config.name, cgroup: handle.cgroup, left });
  }
}
