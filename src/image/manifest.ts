import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readJson, writeJsonAtomic } from '../store/atomic.js';
import { sha256FileCached, type FileHasher } from './file-hash.js';

export const MANIFEST_FILE = 'manifest.json';

/** images/<name>-<hash>/manifest.json: what the image was built from and the sha256 of each file. */
export const ImageManifestSchema = z.object({
  name: z.string(),
  /** Hash of every input; also the directory's suffix. */
  hash: z.string(),
  kernel: z.object({ package: z.string(), version: z.string(), release: z.string() }),
  /** input name → sha256 (or the text itself for short ones), so a rebuild can say what changed. */
  inputs: z.record(z.string(), z.string()),
  /** file in the image directory → sha256. */
  files: z.record(z.string(), z.string()),
  createdAt: z.string(),
});
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export function writeManifest(dir: string, manifest: ImageManifest): void {
  writeJsonAtomic(join(dir, MANIFEST_FILE), manifest);
}

export function readManifest(dir: string): ImageManifest | undefined {
  try {
    return readJson(join(dir, MANIFEST_FILE), ImageManifestSchema);
  } catch {
    return undefined; // a corrupt manifest is a corrupt image: rebuild
  }
}

/** Why the image in `dir` cannot be used (missing, damaged, another build), or undefined when it is intact. */
export async function verifyImage(dir: string, hash: string, hashOf: FileHasher = sha256FileCached): Promise<{ manifest?: ImageManifest; problem?: string }> {
  if (!existsSync(dir)) return { problem: 'not built yet' };
  const manifest = readManifest(dir);
  if (!manifest) return { problem: 'manifest missing or unreadable' };
  if (manifest.hash !== hash) return { problem: 'manifest belongs to another build' };
  for (const [file, sum] of Object.entries(manifest.files)) {
    const actual = await hashOf(join(dir, file));
    if (actual === undefined) return { problem: `${file} is missing` };
    if (actual !== sum) return { problem: `${file} does not match its sha256 (damaged or truncated)` };
  }
  return { manifest };
}
