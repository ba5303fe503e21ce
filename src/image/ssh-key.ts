import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FleetboxError } from '../protocol/errors.js';
import type { Store } from '../store/layout.js';
import { hostCommand } from './host-command.js';

export interface SshKeyPair {
  /** Private key (0600), passed to ssh with -i. */
  privateKey: string;
  publicKey: string;
  /** The public key line, authorised in every guest of this installation. */
  publicKeyText: string;
}

export function sshKeyDir(store: Store): string {
  return join(store.home, 'ssh');
}

/** Paths of the installation's client key, whether or not it exists yet. */
export function sshKeyPaths(store: Store): { privateKey: string; publicKey: string } {
  const privateKey = join(sshKeyDir(store), 'id_ed25519');
  return { privateKey, publicKey: `${privateKey}.pub` };
}

/**
 * The installation's own ed25519 key pair, generated on first use. Guests authorise only this
 * key: fleetbox never uses (or offers) the user's own keys.
 */
export async function ensureSshKey(store: Store): Promise<SshKeyPair> {
  const { privateKey, publicKey } = sshKeyPaths(store);
  if (!existsSync(privateKey) || !existsSync(publicKey)) {
    mkdirSync(sshKeyDir(store), { recursive: true, mode: 0o700 });
    // A half-written pair (crash between the two files) is replaced, never reused.
    rmSync(privateKey, { force: true });
    rmSync(publicKey, { force: true });
    await hostCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fleetbox', '-f', privateKey], {
      failCode: 'missing_prerequisite',
      hint: 'run: fleetbox setup --yes',
    });
  }
  chmodSync(privateKey, 0o600);
  const publicKeyText = readFileSync(publicKey, 'utf8').trim();
  if (!/^ssh-ed25519 \S+/.test(publicKeyText)) {
    throw new FleetboxError('state_corrupt', `${publicKey} is not an ed25519 public key; remove ${sshKeyDir(store)} to get a new key`);
  }
  return { privateKey, publicKey, publicKeyText };
}
