import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { GuestAgent } from '../../dist/backend/qemu/agent.js';
import { scratch } from '../scratch.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

interface Request {
  execute: string;
  arguments?: Record<string, unknown>;
  id?: number;
}

/**
 * A stand-in for qemu-ga on its socket: answers 0xFF with the parse error the real one gives,
 * guest-sync-delimited with 0xFF + the id, and every other request through `answer`.
 */
async function fakeAgent(answer: (request: Request, socket: Socket) => void): Promise<string> {
  const path = `${scratch()}/agent.sock`;
  const server = createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (buffered[0] === 0xff) {
          buffered = buffered.subarray(1);
          socket.write('{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\u00ff\'"}}\n');
          continue;
        }
        const nl = buffered.indexOf(0x0a);
        if (nl === -1) return;
        const request = JSON.parse(buffered.subarray(0, nl).toString()) as Request;
        buffered = buffered.subarray(nl + 1);
        if (request.execute === 'guest-sync-delimited') socket.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${String(request.arguments?.id)}}\n`)]));
        else answer(request, socket);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

describe('GuestAgent (the holder side of qemu-ga)', () => {
  it('syncs past the stray-byte error and stale replies, then matches each reply to its call by id', async () => {
    const path = await fakeAgent((request, socket) => {
      // A reply left over from an earlier call, then the real one.
      socket.write('{"return": "stale", "id": 999}\n');
      socket.write(`${JSON.stringify({ return: { echo: request.arguments?.n }, id: request.id })}\n`);
    });
    const agent = new GuestAgent(path, 'm-1');
    const answers = await Promise.all([1, 2, 3].map((n) => agent.call('guest-echo', { n })));
    expect(answers).toEqual([{ echo: 1 }, { echo: 2 }, { echo: 3 }]);
    agent.close();
  });

  it('sends one call at a time: a second request never reaches the agent before the first is answered', async () => {
    let inFlight = 0;
    let most = 0;
    const path = await fakeAgent((request, socket) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        socket.write(`${JSON.stringify({ return: 'ok', id: request.id })}\n`);
      }, 5);
    });
    const agent = new GuestAgent(path, 'm-1');
    await Promise.all(Array.from({ length: 20 }, () => agent.call('guest-ping')));
    expect(most).toBe(1);
    agent.close();
  });

  it('an agent error is that call\'s error; a call with no answer fails as unresponsive and the next call resyncs', async () => {
    let silent = true;
    const path = await fakeAgent((request, socket) => {
      if (request.execute === 'guest-bad') socket.write(`${JSON.stringify({ error: { class: 'GenericError', desc: 'nope' }, id: request.id })}\n`);
      else if (!silent) socket.write(`${JSON.stringify({ return: 'ok', id: request.id })}\n`);
    });
    const agent = new GuestAgent(path, 'm-1');
    await expect(agent.call('guest-bad')).rejects.toMatchObject({ code: 'io', message: expect.stringContaining('nope') });
    await expect(agent.call('guest-ping', undefined, 100)).rejects.toMatchObject({ code: 'unresponsive' });
    silent = false;
    await expect(agent.call('guest-ping')).resolves.toBe('ok');
    agent.close();
    await expect(agent.call('guest-ping')).rejects.toMatchObject({ code: 'not_running' });
  });

  it('a closed channel fails the call in flight as unreachable', async () => {
    const path = await fakeAgent((_request, socket) => socket.destroy());
    const agent = new GuestAgent(path, 'm-1');
    await expect(agent.call('guest-exec', { path: '/bin/true' })).rejects.toMatchObject({ code: 'unreachable' });
    agent.close();
  });
});
