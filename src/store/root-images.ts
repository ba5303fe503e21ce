import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readJson } from './atomic.js';
import type { Store } from './layout.js';
import { listMembers, readMemberConfig } from './members.js';
import { validateName } from './names.js';

/*
 * Guest root images (fleetbox image build): images/roots/<name>/ holds root/, the tree a
 * member's file server serves read-only, and image.json, written last. src/image builds them;
 * this is what everyone else reads.
 */

export const RootImageSchema = z.object({
  name: z.string(),
  hash: z.string(),
  suite: z.string(),
  packages: z.array(z.string()),
  variant: z.string(),
  createdAt: z.string(),
  buildSeconds: z.number(),
  bytes: z.number(),
});
export type RootImage = z.infer<typeof RootImageSchema> & { root: string };

export function rootsDir(store: Store): string {
  return join(store.imagesDir, 'roots');
}

export function imageDir(store: Store, name: string): string {
  return join(rootsDir(store), validateName(name, 'image name'));
}

/** A built image by name, or undefined. */
export function readRootImage(store: Store, name: string): RootImage | undefined {
  const dir = imageDir(store, name);
  try {
    const manifest = readJson(join(dir, 'image.json'), RootImageSchema);
    if (!manifest || !existsSync(join(dir, 'root', 'etc'))) return undefined;
    return { ...manifest, root: join(dir, 'root') };
  } catch {
    return undefined;
  }
}

/** Every built image, by name. */
export function listRootImages(store: Store): RootImage[] {
  if (!existsSync(rootsDir(store))) return [];
  return readdirSync(rootsDir(store))
    .filter((entry) => !entry.startsWith('.') && !entry.endsWith('.lock'))
    .map((entry) => readRootImage(store, entry))
    .filter((image): image is RootImage => image !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Members (running or not) made with the image: they would lose their root with it. */
export function membersUsing(store: Store, name: string): string[] {
  return listMembers(store)
    .filter((ref) => readMemberConfig(store, ref.cluster, ref.name)?.image === name)
    .map((ref) => ref.name);
}

/** Whether the image can boot with --init systemd. */
export function hasSystemd(image: RootImage): boolean {
  return existsSync(join(image.root, 'lib', 'systemd', 'systemd'));
}
