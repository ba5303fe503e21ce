import { spawn } from 'node:child_process';
import { findBinary } from '../../host/binaries.js';
import { FleetboxError } from '../../protocol/errors.js';

/**
 * True when the guest's SSH server answers on `ip:port`: a connection made from inside the
 * cluster's namespace receives the "SSH-" banner within `timeoutMs`. Node cannot enter a network
 * namespace itself, so socat does the connecting under `ip netns exec`. A listening socket alone
 * is not enough: the banner proves dropbear accepts and serves connections.
 */
export function sshAnswers(namespace: string, ip: string, port = 22, timeoutMs = 2_000): Promise<boolean> {
  const socat = findBinary('socat');
  if (!socat) throw new FleetboxError('missing_prerequisite', 'socat is not installed; run: fleetbox setup --yes');
  const seconds = (timeoutMs / 1000).toFixed(1);
  const child = spawn('ip', ['netns', 'exec', namespace, socat, '-u', `TCP:${ip}:${port},connect-timeout=${seconds}`, 'STDOUT'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Promise<boolean>((resolve) => {
    let seen = '';
    const done = (answer: boolean) => {
      clearTimeout(timer);
      child.stdout.removeAllListeners('data');
      if (child.exitCode === null) child.kill('SIGKILL');
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs + 500);
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.startsWith('SSH-')) done(true);
      else if (seen.length >= 4) done(false);
    });
    child.once('error', () => done(false));
    child.once('exit', () => {
      // Output may still be buffered in the pipe when the process is gone.
      setImmediate(() => done(seen.startsWith('SSH-')));
    });
  });
}
