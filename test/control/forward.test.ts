import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { up } from '../../dist/control/up.js';
import { forwardPort } from '../../dist/control/forward.js';
import { stopMember } from '../../dist/control/stop.js';
import type { Store } from '../../dist/store/layout.js';
import { destroyStore, tempStore } from '../helpers.js';

let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

/** Connects, sends `text`, resolves with everything received until the peer closes or 1 s passes. */
function talk(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes(text)) socket.end();
    });
    socket.on('error', () => resolve(got));
    socket.on('close', () => resolve(got));
    socket.once('connect', () => socket.write(text));
    setTimeout(() => socket.destroy(), 1_000);
  });
}

describe('holder-owned loopback forwards', () => {
  it('pipes 127.0.0.1:<port> to the member, reuses it, and closes it when the member stops', async () => {
    store = tempStore();
    await up(store, { names: ['fwd'], spec: { backend: 'process' } });
    const ref = { cluster: 'fwd', name: 'fwd-1' };
    const forward = await forwardPort(store, ref, 7000);
    expect(forward).toMatchObject({ host: '127.0.0.1', memberPort: 7000 });
    expect(await talk(forward.port, 'ping\n')).toBe('fleetbox fwd-1\nping\n');
    expect((await forwardPort(store, ref, 7000)).port).toBe(forward.port);
    await stopMember(store, ref);
    expect(await talk(forward.port, 'ping\n')).toBe('');
  });

  it('a client that half-closes still gets the whole answer through the forward', async () => {
    store = tempStore();
    await up(store, { names: ['half'], spec: { backend: 'process' } });
    const forward = await forwardPort(store, { cluster: 'half', name: 'half-1' }, 7000);
    const got = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: forward.port, allowHalfOpen: true });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.once('connect', () => socket.end('last words\n'));
    });
    expect(got).toBe('fleetbox half-1\nlast words\n');
  });

  it('a forward to a port nobody listens on closes the client connection, the holder keeps serving', async () => {
    store = tempStore();
    await up(store, { names: ['nolisten'], spec: { backend: 'process' } });
    const ref = { cluster: 'nolisten', name: 'nolisten-1' };
    const forward = await forwardPort(store, ref, 7999);
    expect(await talk(forward.port, 'x\n')).toBe('');
    expect(await talk((await forwardPort(store, ref, 7000)).port, 'ok\n')).toContain('ok');
  });
});
