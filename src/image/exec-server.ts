import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FleetboxError } from '../protocol/errors.js';
import { sha256Text } from './file-hash.js';
import { EXEC_HELLO, EXEC_OUTPUT_CAP } from './guest-init.js';
import { hostCommand } from './host-command.js';

/*
 * The program that serves each exec port in a guest (exec-server.c says why it is a program):
 * built with the host's C compiler into a static binary when the guest image is built, and
 * carried in the initramfs (EXEC_SERVER in image/guest-init.ts). Its constants come from here,
 * so the holder and the guest cannot disagree on them.
 */

/** The source, copied next to this file by the build. */
export const EXEC_SERVER_SOURCE = fileURLToPath(new URL('./exec-server.c', import.meta.url));

/** Where static linking takes the C library from (package libc6-dev), if it is there. */
export function staticLibc(): string | undefined {
  return ['/usr/lib/x86_64-linux-gnu/libc.a', '/usr/lib64/libc.a', '/usr/lib/libc.a'].find((path) => existsSync(path));
}

const FLAGS = ['-std=gnu11', '-Os', '-static', '-s', '-Wall', '-Wextra', `-DOUTPUT_CAP=${EXEC_OUTPUT_CAP}`, `-DHELLO="${EXEC_HELLO}"`];

/** What the image's digest takes of the program: its source and how it is built. */
export function execServerDigest(): string {
  return sha256Text(`${FLAGS.join(' ')}\n${readFileSync(EXEC_SERVER_SOURCE, 'utf8')}`);
}

/** Builds the program at `out` (a static x86-64 executable); the project's tests build it with warnings as errors. */
export async function buildExecServer(out: string, options: { warningsAreErrors?: boolean } = {}): Promise<void> {
  if (!staticLibc()) {
    throw new FleetboxError('missing_prerequisite', "the C library for static programs (package libc6-dev) is needed to build the guest's exec server; run: fleetbox setup --yes");
  }
  const flags = options.warningsAreErrors ? [...FLAGS, '-Werror'] : FLAGS;
  await hostCommand('gcc', [...flags, '-o', out, EXEC_SERVER_SOURCE], { timeoutMs: 120_000, hint: "the guest's exec server is built with gcc and libc6-dev: run fleetbox setup --yes" });
}
