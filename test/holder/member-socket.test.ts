import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { up } from '../../dist/control/up.js';
import { getStatus } from '../../dist/control/status.js';
import type { Store } from '../../dist/store/layout.js';
import { destroyStore, tempStore } from '../helpers.js';

let store: Store;
let pidBefore: number | null;

/** Sends raw bytes to demo-1's socket and collects what comes back until the holder closes. */
function raw(payload: string | Buffer, options: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(store.memberSocketPath('wire-1'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
    socket.once('connect', () => {
      socket.write(payload);
      if (options.end) socket.end();
    });
  });
}

const replyOf = (text: string) => JSON.parse(text.split('\n')[0] ?? '') as { ok: boolean; error?: { code: string } };

beforeAll(async () => {
  store = tempStore();
  const result = await up(store, { names: ['wire'], count: 2, spec: { backend: 'process' } });
  pidBefore = result.members[0]?.pid ?? null;
});

afterAll(async () => {
  await destroyStore(store);
});

describe('member socket: a peer sending garbage gets an error, never a crash or a state change', () => {
  it('answers status', async () => {
    expect(replyOf(await raw('{"cmd":"status"}\n'))).toMatchObject({ ok: true, status: { name: 'wire-1', state: 'running' } });
  });

  it.each([
    ['non-JSON', 'hello there\n', 'bad_request'],
    ['an unknown cmd', '{"cmd":"reboot"}\n', 'unknown_command'],
    ['a wrong-typed field', '{"cmd":"stop","timeoutMs":"soon"}\n', 'bad_request'],
    ['an extra field', '{"cmd":"status","x":1}\n', 'bad_request'],
    ['no cmd', '{"hello":1}\n', 'bad_request'],
    ['a JSON array', '[1,2]\n', 'bad_request'],
    ['an addmember of another cluster', '{"cmd":"addmember","name":"other-1"}\n', 'bad_request'],
    ['an addmember of an invalid name', '{"cmd":"addmember","name":"../etc"}\n', 'invalid_name'],
    ['an addmember of a running member', '{"cmd":"addmember","name":"wire-2"}\n', 'already_running'],
  ])('%s', async (_what, payload, code) => {
    const reply = replyOf(await raw(payload));
    expect(reply.ok).toBe(false);
    expect(reply.error?.code).toBe(code);
  });

  it('a 2 MiB line gets bad_request and the connection closed', async () => {
    const text = await raw(Buffer.alloc(2 * 1024 * 1024, 'a'));
    expect(replyOf(text).error?.code).toBe('bad_request');
  });

  it('a peer closing mid-line changes nothing', async () => {
    await raw('{"cmd":"st', { end: true });
    await raw('', { end: true });
  });

  it('after all of that the holder still serves and no member changed state', async () => {
    const one = await getStatus(store, { cluster: 'wire', name: 'wire-1' });
    const two = await getStatus(store, { cluster: 'wire', name: 'wire-2' });
    expect([one.state, two.state]).toEqual(['running', 'running']);
    expect(one.pid).toBe(pidBefore);
  });
});
