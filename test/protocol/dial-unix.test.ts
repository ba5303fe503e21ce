import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { request } from '../../dist/control/client.js';
import { socketAnswers } from '../../dist/holder/socket-server.js';
import { scratch } from '../scratch.js';

const Pong = z.object({ ok: z.literal(true), n: z.number() });
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** A listener that answers each request line with the number it carried. */
function echoServer(path: string): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', (chunk: Buffer) => {
      const { n } = JSON.parse(chunk.toString().split('\n')[0] ?? '{}') as { n: number };
      socket.end(`${JSON.stringify({ ok: true, n })}\n`);
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

/** A live listener that never accepts: a child process listening with a queue of one, then frozen. */
async function frozenListener(path: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen({ path: ${JSON.stringify(path)}, backlog: 1 }, () => { console.log('up'); process.kill(process.pid, 'SIGSTOP'); })`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise((resolve) => child.stdout?.once('data', resolve));
  return child;
}

describe('connecting to a unix socket whose accept queue is full', () => {
  it('a thousand requests at once all get their answer (a full queue is waited out, not taken for a dead holder)', async () => {
    const path = join(scratch(), 's.sock');
    const server = await echoServer(path);
    try {
      const results = await Promise.allSettled(Array.from({ length: 1_000 }, (_, n) => request(path, { n }, Pong, { timeoutMs: 30_000 })));
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
      expect(failures).toEqual([]);
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value.n : -1))).toEqual(Array.from({ length: 1_000 }, (_, n) => n));
    } finally {
      server.close();
    }
  }, 60_000);

  it('a listener that never accepts: requests end as busy at their deadline, and the socket still counts as live', async () => {
    const path = join(scratch(), 'f.sock');
    await frozenListener(path);
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => request(path, { n: 0 }, Pong, { timeoutMs: 600 })));
    const codes = new Set(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'answered')));
    // The first few land in the queue and wait unanswered; the rest find it full until the deadline.
    expect([...codes].sort()).toEqual(['busy', 'unresponsive']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await socketAnswers(path)).toBe(true);
  }, 30_000);
});
