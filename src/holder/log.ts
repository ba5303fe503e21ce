import { closeSync, writeSync } from 'node:fs';
import type { Logger } from '../host/logger.js';
import { openAppendNoFollow } from '../store/no-follow.js';

/**
 * One JSON object a line, appended synchronously: the holder may be SIGKILLed at any moment and
 * the last line before that is the one worth having.
 */
export function fileLogger(path: string, base: Record<string, unknown> = {}): Logger {
  const write = (level: string, event: string, fields?: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, event, ...base, ...fields });
    try {
      const fd = openAppendNoFollow(path);
      try {
        writeSync(fd, line + '\n');
      } finally {
        closeSync(fd);
      }
    } catch {
      // a full disk must not take the holder down; the state files still say what happened
    }
  };
  return {
    info: (event, fields) => write('info', event, fields),
    warn: (event, fields) => write('warn', event, fields),
    error: (event, fields) => write('error', event, fields),
  };
}
