import {
  chmodSync,
  closeSync,
  openSync,
  writeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { findBinary } from '../host/binaries.js';
import { MACHINE_BACKENDS } from '../store/backend-kinds.js';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import type { MemberRef } from '../store/members.js';
import { execOn, type ExecOptions, type ExecResult } from './exec.js';
import { readMemberFile, writeMemberFileFrom } from './member-files.js';
import { execTarget } from './target.js';

export interface CopyOptions extends Omit<ExecOptions, 'input'> {
  /** Copy a directory with everything under it (`cp -r`); without it a directory source is refused. */
  recursive?: boolean;
}

/*
 * How a copy behaves, the same for every backend and both directions (like `cp -r`/`docker cp`):
 * - a destination that is an existing directory receives the source inside it, under its base
 *   name; any other destination is the new name itself;
 * - mode bits travel with files and directories, symlinks inside a tree stay links, ownership
 *   does not travel (the receiving side's user owns the copy);
 * - nothing is ever written into an existing file: the copy is unpacked under a temporary name
 *   in the destination's directory and renamed over the destination. A guest process that has
 *   the old file mapped or open (a running binary, a script `sh` is reading) keeps the old,
 *   unlinked inode; writing in place would fail with ETXTBSY or crash it (SIGBUS, garbled script);
 * - onto an existing directory a tree is merged file by file, each file renamed into place.
 */

const quote = (path: string) => `'${path.replace(/'/g, `'\\''`)}'`;

/** Name prefix of the staging directories, in the destination's directory so that rename never crosses a filesystem. */
const STAGE_PREFIX = '.fleetbox-cp.';

/** Exit codes of the guest scripts below that are not plain failures. */
const GUEST_EXIT = { missing: 3, isDirectory: 4, conflict: 6 } as const;

const needsRecursive = (what: string) => new FleetboxError('usage', `${what} is a directory; add -r to copy it (library: recursive: true)`);

/**
 * Copies a host file, or with `recursive` a directory tree, onto a member. The guest has no
 * sftp server, so a tar stream travels as the input of a command, through the member's holder
 * (for a VM: its guest agent); every backend unpacks it with the same script.
 */
export async function copyToMember(store: Store, ref: MemberRef, localPath: string, remotePath: string, options: CopyOptions = {}): Promise<void> {
  const target = await execTarget(store, ref);
  const where = `${ref.name}:${remotePath}`;
  const source = readSource(localPath, localPath, options.recursive === true);
  // A member that is not a machine of its own writes into the host's tree: never into the source.
  if (source.isDirectory && !MACHINE_BACKENDS.has(target.config.backend)) refuseIntoItself(source, remotePath, where, localPath);
  const script = copyInScript(guestPath(remotePath, where), source.name, basename(source.path), source.isDirectory);
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const budget = () => Math.max(1, deadline - Date.now());
  // The archive streams from tar: a small one goes whole as the script's input (one request);
  // a bigger one is written piece by piece to a file in the member, which the script reads.
  const { MAX_EXEC_INPUT } = await import('../protocol/schemas.js');
  const packing = packStream(['-c', '-f', '-', '-C', dirname(source.path), `./${basename(source.path)}`], `cannot pack ${localPath}`);
  let staged: string | undefined;
  try {
    const head = await packing.read(MAX_EXEC_INPUT + 1);
    let result;
    if (head.length <= MAX_EXEC_INPUT) {
      await packing.done;
      result = await execOn(target, script, { timeoutMs: budget(), input: head });
    } else {
      staged = `/tmp/${STAGE_PREFIX}in.${randomBytes(8).toString('hex')}.tar`;
      await writeMemberFileFrom(target, staged, head, packing.rest(), deadline);
      await packing.done;
      // The script takes the staged archive as its input and unlinks it before unpacking.
      result = await execOn(target, `exec < ${quote(staged)} && rm -f ${quote(staged)}\n${script}`, { timeoutMs: budget() });
      staged = undefined;
    }
    if (result.exitCode !== 0) throw guestFailure(result, 'to', where);
  } finally {
    packing.stop();
    if (staged) await execOn(target, `rm -f ${quote(staged)}`, { timeoutMs: 10_000 }).catch(() => undefined);
  }
}

/** Copies a file, or with `recursive` a directory tree, from a member to the host. */
export async function copyFromMember(store: Store, ref: MemberRef, remotePath: string, localPath: string, options: CopyOptions = {}): Promise<void> {
  const target = await execTarget(store, ref);
  const where = `${ref.name}:${remotePath}`;
  const remote = guestPath(remotePath, where);
  const destination = hostDestination(localPath, localPath);
  // The guest packs into a file of its own; the host reads it piece by piece into a file of its
  // own: neither side holds the whole archive in memory.
  const staged = `/tmp/${STAGE_PREFIX}out.${randomBytes(8).toString('hex')}.tar`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const budget = () => Math.max(1, deadline - Date.now());
  try {
    const packed = await execOn(target, copyOutScript(remote, options.recursive === true, staged), { timeoutMs: budget() });
    if (packed.exitCode !== 0) throw guestFailure(packed, 'from', where);
    const size = Number(packed.stdout.trim());
    await withStage(destination.parent, async (stage) => {
      const archive = join(stage, 'archive.tar');
      const out = openSync(archive, 'w', 0o600);
      try {
        await readMemberFile(target, staged, (piece) => writeSync(out, piece));
      } finally {
        closeSync(out);
      }
      if (statSync(archive).size !== size) throw new FleetboxError('io', `copy from ${where} failed: ${statSync(archive).size} of ${size} bytes arrived`);
      const unpacked = join(stage, 'unpacked');
      mkdirSync(unpacked);
      await hostTar(['-x', '-o', '-p', '-f', archive, '-C', unpacked], `cannot unpack ${where} into ${destination.parent}`);
      const [entry] = readdirSync(unpacked);
      if (entry === undefined) throw new FleetboxError('io', `copy from ${where} failed: the guest sent an empty archive`);
      // `.` or `..` name no entry; the copy is then named as the guest resolved it.
      const given = posix.basename(remote);
      placeOnHost(join(unpacked, entry), destination.final(given === '.' || given === '..' ? entry : given));
    });
  } finally {
    await execOn(target, `rm -f ${quote(staged)}`, { timeoutMs: 10_000 }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// the host's end of a copy

interface Source {
  /** The real path: a symlink given as the source is followed (only links inside a tree are kept). */
  path: string;
  /** The name a copy into a directory gets: the base name as given. */
  name: string;
  isDirectory: boolean;
}

function readSource(path: string, label: string, recursive: boolean): Source {
  let real: string;
  let stats: Stats;
  try {
    real = realpathSync(path);
    stats = statSync(real);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FleetboxError('not_found', `cannot copy ${label}: no such file or directory`, { cause: error });
    throw new FleetboxError('io', `cannot read ${label}: ${code}`, { cause: error });
  }
  const name = basename(resolve(path));
  if (name === '') throw new FleetboxError('usage', `cannot copy the root directory ${label}; name a directory below it`);
  if (stats.isDirectory() && !recursive) throw needsRecursive(label);
  return { path: real, name, isDirectory: stats.isDirectory() };
}

/**
 * Where a copy named `name` lands for a destination given as `path`: inside it when it is an
 * existing directory, else at `path` itself, whose directory must exist.
 */
function hostDestination(path: string, label: string): { parent: string; final: (name: string) => string } {
  if (statOrUndefined(path)?.isDirectory()) return { parent: path, final: (name) => join(path, name) };
  const parent = dirname(resolve(path));
  if (!statOrUndefined(parent)?.isDirectory()) throw new FleetboxError('not_found', `cannot copy to ${label}: no such directory ${dirname(path)}`);
  return { parent, final: () => path };
}

/** `cp -r` refuses to copy a directory into itself; so does a copy onto a member that shares the host's files. */
function refuseIntoItself(source: Source, destinationPath: string, label: string, sourceLabel: string): void {
  let into: string;
  try {
    into = realpathSync(statOrUndefined(destinationPath)?.isDirectory() ? destinationPath : dirname(resolve(destinationPath)));
  } catch {
    return; // a missing destination directory is the copy script's to report
  }
  if (into === source.path || into.startsWith(`${source.path}/`)) throw new FleetboxError('usage', `cannot copy ${sourceLabel} into itself (${label})`);
}

/** A staging directory in `parent` that is removed whatever happens, so a failed copy leaves nothing behind. */
async function withStage(parent: string, use: (stage: string) => Promise<void>): Promise<void> {
  const stage = makeStage(parent);
  try {
    await use(stage);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function makeStage(parent: string): string {
  try {
    return mkdtempSync(join(parent, STAGE_PREFIX));
  } catch (error) {
    throw new FleetboxError('io', `cannot write in ${parent}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
}

/** Moves a staged copy to `final`: a rename, or a file-by-file merge into an existing directory. */
function placeOnHost(staged: string, final: string): void {
  // Every conflict is found before anything moves, so a refused copy changes nothing.
  findConflict(staged, final);
  moveInto(staged, final);
}

function findConflict(staged: string, final: string): void {
  const existing = statOrUndefined(final);
  if (!existing) return;
  if (lstatSync(staged).isDirectory()) {
    if (!existing.isDirectory()) throw new FleetboxError('io', `cannot overwrite non-directory ${final} with a directory`);
    for (const entry of readdirSync(staged)) findConflict(join(staged, entry), join(final, entry));
  } else if (existing.isDirectory()) {
    throw new FleetboxError('io', `cannot overwrite directory ${final} with a file`);
  }
}

function moveInto(staged: string, final: string): void {
  const stats = lstatSync(staged);
  if (stats.isDirectory() && statOrUndefined(final)?.isDirectory()) {
    // Entries are renamed out of the staged directory, which takes write permission on it.
    chmodSync(staged, stats.mode | 0o700);
    for (const entry of readdirSync(staged)) moveInto(join(staged, entry), join(final, entry));
    chmodSync(final, stats.mode & 0o7777);
  } else {
    renameSync(staged, final);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** tar's output as it comes: at least the first `bytes` (or all, if less), then the rest as a stream; `done` settles with its exit. */
interface PackStream {
  read(bytes: number): Promise<Buffer>;
  rest(): AsyncIterable<Buffer>;
  done: Promise<void>;
  stop(): void;
}

/** Runs the host's tar with its output streamed (a tree of any size is never held whole). */
function packStream(args: string[], what: string): PackStream {
  const tar = findBinary('tar');
  if (!tar) throw new FleetboxError('missing_prerequisite', 'tar is not installed on the host; install the tar package');
  const child = spawn(tar, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4096)));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) => reject(new FleetboxError('io', `${what}: ${error.message}`, { cause: error })));
    child.once('close', (code, signal) => (code === 0 ? resolve() : reject(new FleetboxError('io', `${what}: ${lastWords(stderr) || `tar ended with ${signal ?? `exit ${code}`}`}`))));
  });
  done.catch(() => undefined);
  const chunks = child.stdout[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    async read(bytes) {
      const parts: Buffer[] = [];
      let size = 0;
      while (size < bytes) {
        const next = await chunks.next();
        if (next.done) break;
        parts.push(next.value);
        size += next.value.length;
      }
      return Buffer.concat(parts);
    },
    async *rest() {
      for (;;) {
        const next = await chunks.next();
        if (next.done) return;
        yield next.value;
      }
    },
    done,
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs the host's tar (no input), for its exit; its output is returned. */
async function hostTar(args: string[], what: string): Promise<Buffer> {
  const tar = findBinary('tar');
  if (!tar) throw new FleetboxError('missing_prerequisite', 'tar is not installed on the host; install the tar package');
  const { execa } = await import('execa');
  const result = await execa(tar, args, { reject: false, encoding: 'buffer', stripFinalNewline: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new FleetboxError('io', `${what}: ${lastWords(Buffer.from(result.stderr).toString('utf8')) || result.message}`);
  }
  return Buffer.from(result.stdout);
}

// ---------------------------------------------------------------------------------------------
// guest side: POSIX sh and only what busybox and GNU coreutils/tar both understand
// (tar -c/-x -f - -C, -o; mktemp -d; stat -c %a; readlink -f), so the same scripts
// run in the initramfs guest and in a full Debian userland.

/**
 * A guest path as the scripts use it: no trailing slash, and never starting with '-', so no
 * command reads it as an option (some busybox applets do not take `--`).
 */
export function guestPath(path: string, where: string): string {
  if (path === '') throw new FleetboxError('usage', `name a path on the member: ${where}`);
  const trimmed = path.replace(/\/+$/, '') || '/';
  return trimmed.startsWith('/') ? trimmed : `./${trimmed}`;
}

/**
 * `merge STAGED EXISTING check|move`: merges a staged directory into an existing one. The check pass
 * finds every conflict before the move pass touches anything; the move pass renames each file
 * (and each directory that is new) into place and gives merged directories the source's mode.
 * Subshells keep the recursion's variables apart (POSIX sh has no `local`).
 */
const MERGE = `merge() {
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    t="$2/\${e##*/}"
    if [ -d "$e" ] && [ ! -L "$e" ] && [ -d "$t" ]; then
      ( merge "$e" "$t" "$3" ) || return $?
      [ "$3" = check ] || chmod "$(stat -c %a "$e")" "$t" || return 1
    elif [ -d "$e" ] && [ ! -L "$e" ] && [ -e "$t" ]; then
      echo "cannot overwrite non-directory $t with a directory" >&2; return ${GUEST_EXIT.conflict}
    elif [ -d "$t" ]; then
      echo "cannot overwrite directory $t with a file" >&2; return ${GUEST_EXIT.conflict}
    else
      [ "$3" = check ] || mv -f "$e" "$t" || return 1
    fi
  done
}`;

/**
 * Receives a tar stream on stdin holding one entry `./<entry>`, unpacks it in a
 * staging directory next to the destination and renames it into place. Exported for the tests
 * that run it under busybox sh and under dash/bash with GNU tools.
 */
export function copyInScript(destination: string, name: string, entry: string, isDirectory: boolean): string {
  const inside = destination === '/' ? `/${name}` : `${destination}/${name}`;
  const place = isDirectory
    ? `if [ -d "$f" ]; then
  merge "$i" "$f" check || exit $?
  merge "$i" "$f" move || exit 5
  chmod "$(stat -c %a "$i")" "$f" || exit 5
else
  mv -f "$i" "$f" || exit 5
fi`
    : `mv -f "$i" "$f" || exit 5`;
  const conflict = isDirectory
    ? `if [ -e "$f" ] && [ ! -d "$f" ]; then echo "cannot overwrite non-directory $f with a directory" >&2; exit ${GUEST_EXIT.conflict}; fi`
    : `if [ -d "$f" ]; then echo "cannot overwrite directory $f with a file" >&2; exit ${GUEST_EXIT.conflict}; fi`;
  return `${MERGE}
if [ -d ${quote(destination)} ]; then f=${quote(inside)}; p=${quote(destination)}; else f=${quote(destination)}; p=${quote(posix.dirname(destination))}; fi
if [ ! -d "$p" ]; then echo "no such directory $p" >&2; exit ${GUEST_EXIT.missing}; fi
${conflict}
s=$(mktemp -d "$p/${STAGE_PREFIX}XXXXXX") || exit 5
trap 'rm -rf "$s"' EXIT
trap 'exit 1' HUP INT TERM PIPE
# Modes exactly as packed, whoever unpacks (tar applies the umask for users other than root).
umask 0
tar -x -o -f - -C "$s" || exit 5
i="$s"/${quote(entry)}
${place}`;
}

/**
 * Packs the path (a symlink given as the path is followed) as a tar with one entry into
 * `staged`, private to root, and prints its size; the host reads it in slices.
 */
export function copyOutScript(path: string, recursive: boolean, staged: string): string {
  return `r=${quote(path)}
if [ ! -e "$r" ]; then echo "no such file or directory" >&2; exit ${GUEST_EXIT.missing}; fi
r=$(readlink -f "$r") || exit 5
${recursive ? '' : `if [ -d "$r" ]; then exit ${GUEST_EXIT.isDirectory}; fi`}
p=\${r%/*}; n=\${r##*/}
[ -n "$p" ] || p=/
if [ -z "$n" ]; then echo "cannot copy the root directory" >&2; exit 5; fi
umask 077
tar -c -f ${quote(staged)} -C "$p" "./$n" || { rm -f ${quote(staged)}; exit 5; }
wc -c < ${quote(staged)}`;
}

/** A failed guest script as a one-line error naming the member and path. */
function guestFailure(result: ExecResult, direction: 'to' | 'from', where: string): FleetboxError {
  const said = lastWords(result.stderr) || 'no message';
  switch (result.exitCode) {
    case GUEST_EXIT.missing:
      return new FleetboxError('not_found', direction === 'to' ? `cannot copy to ${where}: ${said}` : `cannot copy ${where}: ${said}`);
    case GUEST_EXIT.isDirectory:
      return needsRecursive(where);
    case GUEST_EXIT.conflict:
      return new FleetboxError('io', `copy ${direction} ${where} failed: ${said}`);
    default:
      return new FleetboxError('io', `copy ${direction} ${where} failed (exit ${result.exitCode}): ${said}`);
  }
}

/** The line of a tool's stderr that says what failed: the last one, but not GNU tar's closing summary. */
function lastWords(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !/^tar: Exiting with failure status/.test(line));
  return lines.pop() ?? '';
}
