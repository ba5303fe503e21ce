import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';

const made: string[] = [];

/** A fresh directory under /tmp (short paths: unix sockets allow 107 bytes), removed after the file's tests. */
export function scratch(): string {
  const dir = mkdtempSync('/tmp/fbx-s-');
  made.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});
