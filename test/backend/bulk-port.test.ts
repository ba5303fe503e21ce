import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BulkPort } from '../../dist/backend/qemu/bulk.js';
import { BULK_HELLO } from '../../dist/image/guest-init.js';
import { scratch } from '../scratch.js';

/*
 * The holder's end of the bulk port against a stand-in for the guest's loop that speaks its
 * protocol (the real loop is exercised by the copy tests on real VMs).
 */

type Behaviour = 'serve' | 'mute-after-hello' | 'wrong-hello';

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

/** A fake guest: files in a map; `behaviour` breaks it on purpose. */
function fakeGuest(behaviour: Behaviour): { path: string; files: Map<string, Buffer>; reads: number[] } {
  const files = new Map<string, Buffer>();
  const reads: number[] = [];
  const path = join(scratch(), 'bulk.sock');
  const server = createServer((socket: Socket) => {
    let buffered = Buffer.alloc(0);
    let greeted = false;
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf(0x0a);
        if (end < 0) return;
        const [op, a, b, n] = buffered.subarray(0, end).toString().split(' ');
        const nameLength = Number(n);
        const dataLength = op === 'W' ? Number(b) : 0;
        if (buffered.length < end + 1 + nameLength + dataLength) return;
        const name = buffered.subarray(end + 1, end + 1 + nameLength).toString();
        const data = buffered.subarray(end + 1 + nameLength, end + 1 + nameLength + dataLength);
        buffered = buffered.subarray(end + 1 + nameLength + dataLength);
        if (op === 'H') {
          greeted = true;
          socket.write(behaviour === 'wrong-hello' ? 'hello?\n' : `${BULK_HELLO}\n`);
        } else if (behaviour === 'mute-after-hello' && greeted) {
          // says nothing: the host must give the port up at its deadline
        } else if (op === 'W') {
          if (name.startsWith('/missing/')) socket.write(`ERR cannot write ${name}\n`);
          else {
            files.set(name, a === '1' ? Buffer.concat([files.get(name) ?? Buffer.alloc(0), data]) : Buffer.from(data));
            socket.write('OK\n');
          }
        } else if (op === 'R') {
          reads.push(Number(a));
          const file = files.get(name);
          if (!file) socket.write(`ERR cannot read ${name}\n`);
          else {
            const piece = file.subarray(Number(a), Number(a) + Number(b));
            socket.write(`OK ${piece.length} ${Number(a) + piece.length >= file.length ? 1 : 0}\n`);
            socket.write(piece);
          }
        }
      }
    });
  });
  server.listen(path);
  servers.push(server);
  return { path, files, reads };
}

const quick = { helloMs: 300, pieceMs: 300 };

describe('bulk port (holder side)', () => {
  it('writes, appends and reads back in pieces; a guest refusal is an error and the port stays in step', async () => {
    const guest = fakeGuest('serve');
    const port = new BulkPort(guest.path, 'm-1', undefined, quick);
    const first = Buffer.alloc(700_000, 1);
    const second = Buffer.from('tail\n');
    expect(await port.write('/tmp/f', first, false)).toBe(true);
    expect(await port.write('/tmp/f', second, true)).toBe(true);
    expect(guest.files.get('/tmp/f')?.equals(Buffer.concat([first, second]))).toBe(true);
    await expect(port.write('/missing/f', Buffer.from('x'), false)).rejects.toThrow(/cannot write \/missing\/f/);
    const head = await port.read('/tmp/f', 0, 524_288);
    const rest = await port.read('/tmp/f', 524_288, 524_288);
    expect(head).toMatchObject({ eof: false });
    expect(rest).toMatchObject({ eof: true });
    expect(Buffer.concat([head?.data ?? Buffer.alloc(0), rest?.data ?? Buffer.alloc(0)]).equals(Buffer.concat([first, second]))).toBe(true);
    await expect(port.read('/nope', 0, 10)).rejects.toThrow(/cannot read \/nope/);
    // Requests side by side go one at a time and each gets its own answer.
    const all = await Promise.all([port.write('/a', Buffer.from('A'), false), port.write('/b', Buffer.from('B'), false), port.read('/tmp/f', 0, 4)]);
    expect(all[2]?.data.equals(Buffer.alloc(4, 1))).toBe(true);
    expect(guest.files.get('/a')?.toString()).toBe('A');
    port.close();
  });

  it('reads ahead: a file read piece by piece costs one request per 4 MiB; a read from the start sees the file as it is now', async () => {
    const guest = fakeGuest('serve');
    const port = new BulkPort(guest.path, 'm-1', undefined, quick);
    const file = Buffer.alloc(1_500_000);
    for (let i = 0; i < file.length; i += 4) file.writeUInt32LE(i, i);
    guest.files.set('/big', file);
    const pieces: Buffer[] = [];
    for (let offset = 0, eof = false; !eof; ) {
      const piece = await port.read('/big', offset, 524_288);
      if (!piece) throw new Error('port unusable');
      pieces.push(piece.data);
      offset += piece.data.length;
      eof = piece.eof;
    }
    expect(Buffer.concat(pieces).equals(file)).toBe(true);
    expect(pieces.map((p) => p.length)).toEqual([524_288, 524_288, 1_500_000 - 2 * 524_288]);
    expect(guest.reads).toEqual([0]);
    guest.files.set('/big', Buffer.from('new'));
    expect((await port.read('/big', 0, 524_288))?.data.toString()).toBe('new');
    expect(guest.reads).toEqual([0, 0]);
    port.close();
  });

  it('no port or a wrong hello: the agent is used; a guest that stops answering: a write is an error, a read falls back; the port is given up', async () => {
    const reasons: string[] = [];
    const absent = new BulkPort(join(scratch(), 'none.sock'), 'm-1', (why) => reasons.push(why), quick);
    expect(await absent.write('/f', Buffer.from('x'), false)).toBe(false);
    expect(await absent.read('/f', 0, 1)).toBeUndefined();
    const wrong = new BulkPort(fakeGuest('wrong-hello').path, 'm-1', (why) => reasons.push(why), quick);
    expect(await wrong.write('/f', Buffer.from('x'), false)).toBe(false);
    // A write cut off on its way is an error (the guest may have written part of it), never
    // handed to the agent to do again; the port is given up, so the next one goes there.
    const mute = new BulkPort(fakeGuest('mute-after-hello').path, 'm-1', (why) => reasons.push(why), quick);
    await expect(mute.write('/f', Buffer.from('x'), true)).rejects.toThrow(/a write was cut off on its way/);
    expect(await mute.write('/f', Buffer.from('x'), true)).toBe(false);
    // A read can be asked again elsewhere: it falls back at once.
    const muteRead = new BulkPort(fakeGuest('mute-after-hello').path, 'm-1', (why) => reasons.push(why), quick);
    expect(await muteRead.read('/f', 0, 1)).toBeUndefined();
    // A path the guest's line protocol cannot carry goes to the agent without touching the port.
    expect(await new BulkPort(fakeGuest('serve').path, 'm-1', undefined, quick).write('/a\nb', Buffer.from('x'), false)).toBe(false);
    expect(reasons).toHaveLength(4);
    expect(reasons[0]).toMatch(/no bulk port/);
    expect(reasons[1]).toMatch(/answered "hello\?"/);
    expect(reasons[2]).toMatch(/no answer within 300 ms/);
  });
});
