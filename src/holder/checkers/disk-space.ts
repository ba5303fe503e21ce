import { statfs } from 'node:fs/promises';
import type { HolderCheckContext, WaitingChecker } from './types.js';

export interface DiskThresholds {
  /** Below either of these: fail (the store cannot take another member disk or log). */
  failBytes: number;
  failFraction: number;
  /** Below either of these: warn. */
  warnBytes: number;
  warnFraction: number;
}

export const DEFAULT_DISK_THRESHOLDS: DiskThresholds = {
  failBytes: 256 * 1024 ** 2,
  failFraction: 0.02,
  warnBytes: 1024 ** 3,
  warnFraction: 0.05,
};

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}

/** Free space on the file system of the store (member disks, logs, state files live there). */
export function diskSpaceChecker(thresholds: DiskThresholds = DEFAULT_DISK_THRESHOLDS): WaitingChecker<HolderCheckContext> {
  return {
    name: 'disk-space',
    async check({ store }) {
      const fs = await statfs(store.home);
      const free = fs.bavail * fs.bsize;
      const total = fs.blocks * fs.bsize;
      const fraction = total > 0 ? free / total : 0;
      const detail = `${human(free)} free of ${human(total)} (${(fraction * 100).toFixed(1)}%) under ${store.home}`;
      if (free < thresholds.failBytes || fraction < thresholds.failFraction) return { status: 'fail', detail };
      if (free < thresholds.warnBytes || fraction < thresholds.warnFraction) return { status: 'warn', detail };
      return { status: 'pass', detail };
    },
  };
}
