import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import type { Store } from '../../store/layout.js';
import type { MemberChecker, MemberTarget } from './types.js';

/**
 * Where a qemu member's QMP socket is (the store names it for both the backend and this
 * checker); a missing socket is a `skip`, never a false alarm.
 */
export type QmpSocketResolver = (store: Store, member: MemberTarget) => string | undefined;

export const defaultQmpSocket: QmpSocketResolver = (store, member) => {
  const path = store.qmpSocketPath(member.name);
  return existsSync(path) ? path : undefined;
};

interface QmpMessage {
  QMP?: unknown;
  return?: { status?: string; running?: boolean };
  error?: { desc?: string };
  event?: string;
}

/**
 * The hypervisor answers QMP: greeting → qmp_capabilities → query-status, and the VM runs.
 * QMP allows one client at a time on a socket in some configurations, so the connection is
 * closed as soon as the answer is in.
 */
export function qmpChecker(resolve: QmpSocketResolver = defaultQmpSocket): MemberChecker {
  return {
    name: 'hypervisor',
    check({ member, store, signal }) {
      if (member.backend !== 'qemu') return Promise.resolve({ status: 'skip', detail: `no hypervisor for the ${member.backend} backend` });
      if (member.state !== 'running') return Promise.resolve({ status: 'skip', detail: `member is ${member.state}` });
      const path = resolve(store, member);
      if (!path) return Promise.resolve({ status: 'skip', detail: 'no QMP socket found' });
      return new Promise((settle) => {
        const socket = connect(path);
        let buffered = '';
        let step: 'greeting' | 'capabilities' | 'status' = 'greeting';
        const done = (status: 'pass' | 'fail', detail: string) => {
          signal.removeEventListener('abort', onAbort);
          socket.destroy();
          settle({ status, detail });
        };
        const onAbort = () => done('fail', `QMP did not answer ${step} in time`);
        signal.addEventListener('abort', onAbort, { once: true });
        socket.setEncoding('utf8');
        socket.once('error', (error: NodeJS.ErrnoException) => done('fail', `QMP socket: ${error.code ?? error.message}`));
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          if (buffered.length > 65_536) return done('fail', 'QMP sent an over-long line');
          for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            let message: QmpMessage;
            try {
              message = JSON.parse(line) as QmpMessage;
            } catch {
              return done('fail', 'QMP sent something that is not JSON');
            }
            if (message.event !== undefined) continue;
            if (message.error) return done('fail', `QMP error: ${message.error.desc ?? 'unknown'}`);
            if (step === 'greeting' && message.QMP !== undefined) {
              step = 'capabilities';
              socket.write('{"execute":"qmp_capabilities"}\n');
            } else if (step === 'capabilities' && message.return !== undefined) {
              step = 'status';
              socket.write('{"execute":"query-status"}\n');
            } else if (step === 'status' && message.return !== undefined) {
              const vm = message.return.status ?? 'unknown';
              return message.return.running === true || vm === 'running'
                ? done('pass', 'hypervisor answers; VM running')
                : done('fail', `hypervisor answers but the VM is ${vm}`);
            }
          }
        });
      });
    },
  };
}
