import { scratch } from '../scratch.js';
import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readLines, type FrameError } from '../../dist/protocol/framing.js';

/** Starts a server that reports what readLines delivers for one connection. */
async function feed(send: (client: Socket) => void, maxLineBytes = 1024) {
  const path = `${scratch()}/s.sock`;
  const values: unknown[] = [];
  const errors: FrameError[] = [];
  const server = createServer((socket) => {
    const reader = readLines(socket, maxLineBytes);
    reader.onValue((v) => values.push(v));
    reader.onError((e) => {
      errors.push(e);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = connect(path);
  await new Promise((resolve) => client.once('connect', resolve));
  send(client);
  await new Promise((resolve) => client.once('close', resolve));
  server.close();
  return { values, errors };
}

describe('readLines', () => {
  it('parses several lines split across chunks', async () => {
    const { values, errors } = await feed((c) => {
      c.write('{"a":1}\n{"b"');
      setTimeout(() => c.end(':2}\n'), 10);
    });
    expect(values).toEqual([{ a: 1 }, { b: 2 }]);
    expect(errors).toEqual([]);
  });

  it('reports a non-JSON line', async () => {
    const { errors } = await feed((c) => c.end('hello\n'));
    expect(errors[0]?.kind).toBe('not_json');
  });

  it('reports a line over the cap, even one that arrives complete', async () => {
    const { errors, values } = await feed((c) => c.end(`{"x":"${'a'.repeat(2000)}"}\n`));
    expect(errors[0]?.kind).toBe('too_long');
    expect(values).toEqual([]);
  });

  it('reports an endless line while it streams in', async () => {
    const { errors } = await feed((c) => {
      c.write('{"x":"' + 'a'.repeat(800));
      setTimeout(() => c.write('b'.repeat(800)), 10);
    });
    expect(errors[0]?.kind).toBe('too_long');
  });

  it('a peer closing mid-line is a not_json error, not a crash', async () => {
    const { errors, values } = await feed((c) => c.end('{"cmd":"sta'));
    expect(values).toEqual([]);
    expect(errors[0]?.kind).toBe('not_json');
  });
});
