import { buildRootImage, removeRootImage } from '../image/debian-image.js';
import { Store } from '../store/layout.js';
import { listRootImages, type RootImage } from '../store/root-images.js';

export interface BuildImageOptions {
  /** Image name, used as `startCluster({ image })`. */
  name: string;
  /** Debian packages to install (with what they depend on). */
  packages?: string[];
  /** Debian suite (default: the host's). */
  suite?: string;
  /** Build again even when the inputs did not change. */
  force?: boolean;
  /** mmdebstrap's progress, line by line. */
  onProgress?: (line: string) => void;
  /** Store directory (default $FLEETBOX_HOME or ~/.fleetbox). */
  home?: string;
}

export type ImageInfo = Omit<RootImage, 'root'> & { cached: boolean };

/** Builds (or reuses, when its inputs are unchanged) a guest root from Debian packages. */
export async function buildImage(options: BuildImageOptions): Promise<ImageInfo> {
  const store = new Store(options.home).ensure();
  const { root: _root, ...image } = await buildRootImage(store, {
    name: options.name,
    packages: options.packages ?? [],
    ...(options.suite !== undefined && { suite: options.suite }),
    ...(options.force !== undefined && { force: options.force }),
    ...(options.onProgress && { onProgress: options.onProgress }),
  });
  return image;
}

/** The built images. */
export function listImages(options: { home?: string } = {}): Omit<RootImage, 'root'>[] {
  return listRootImages(new Store(options.home).ensure()).map(({ root: _root, ...image }) => image);
}

/** Deletes an image; refused while a member is made with it. */
export function removeImage(name: string, options: { home?: string } = {}): Promise<void> {
  return removeRootImage(new Store(options.home).ensure(), name);
}
