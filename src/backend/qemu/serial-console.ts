import { readTail } from '../../host/tail.js';
import { ERROR_MARKER, READY_MARKER } from '../../image/guest-init.js';

/** Console lines without the serial line's carriage returns. */
function lines(text: string): string[] {
  return text.replace(/\r/g, '').split('\n');
}

export interface ConsoleVerdict {
  ready: boolean;
  /** The guest init's first error line, if it printed one. */
  error: string | undefined;
}

/** What the guest said on its console so far: the ready marker for `name`, or an init error. */
export function readConsole(path: string, name: string): ConsoleVerdict {
  const all = lines(readTail(path, 1 << 20));
  // `includes`, not `startsWith`: a kernel message may land on the console mid-line.
  const ready = all.some((line) => line.includes(`${READY_MARKER} ${name} `) || line.endsWith(`${READY_MARKER} ${name}`));
  const error = all.find((line) => line.includes(`${ERROR_MARKER} `));
  return { ready, error };
}

/** The last `count` non-empty lines of the console, for boot failure messages. */
export function consoleTail(path: string, count = 20): string {
  return lines(readTail(path))
    .filter((line) => line.trim() !== '')
    .slice(-count)
    .join('\n');
}
