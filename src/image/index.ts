export { ensureImage, type EnsureImageOptions, type GuestImage } from './ensure-image.js';
export { checkPrerequisites, installPrerequisites, type InstallOptions, type Prerequisite } from './prereqs.js';
export { ensureSshKey, sshKeyPaths, type SshKeyPair } from './ssh-key.js';
export { READY_MARKER } from './guest-init.js';
