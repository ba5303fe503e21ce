import { spawn, type ChildProcess } from 'node:child_process';
import { findBinary } from '../../host/binaries.js';
import type { Store } from '../../store/layout.js';
import { terminateChild } from '../../host/proc.js';
import { removeStaleSocket } from '../../store/reconcile.js';
import type { Logger } from '../../host/logger.js';
import { sshOptions, type GuestAddress } from './ssh.js';

export interface SshMaster {
  stop(): Promise<void>;
}

/**
 * One SSH connection per running guest, held by the holder, that every exec shares
 * (OpenSSH connection multiplexing on `store.sshMuxPath(member)`). Under software emulation a
 * fresh connection costs ~150 ms of key exchange in the guest; a shared one ~30 ms. The master
 * dies with the holder (pdeathsig) and with the guest (keep-alives); execs fall back to a
 * connection of their own whenever it is not there.
 */
export function startSshMaster(store: Store, member: string, network: GuestAddress, log: Logger): SshMaster | undefined {
  const setpriv = findBinary('setpriv');
  const ip = findBinary('ip');
  if (!setpriv || !ip || !network.namespace) return undefined;
  const path = store.sshMuxPath(member);
  removeStaleSocket(path); // left by a crashed run: a master cannot bind over it
  const child: ChildProcess = spawn(
    setpriv,
    [
      '--pdeathsig', 'KILL', '--',
      ip, 'netns', 'exec', network.namespace,
      'ssh', ...sshOptions(store),
      '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=2', '-o', 'ControlPersist=no',
      '-M', '-N', '-S', path, '-T', '--', `root@${network.ip}`,
    ],
    { stdio: 'ignore' },
  );
  child.once('exit', (code, signal) => log.info('ssh_master_exit', { member, code, signal }));
  child.once('error', () => undefined);
  log.info('ssh_master_started', { member, pid: child.pid });
  return {
    async stop() {
      await terminateChild(child);
      removeStaleSocket(path);
    },
  };
}
