import type { GuestAgent } from './agent.js';

/**
 * Files in the guest through its agent (guest-file-*): no process is started for them, and the
 * bytes travel base64 in one agent call per piece.
 */
export async function agentWriteFile(agent: GuestAgent, path: string, data: Buffer, append: boolean): Promise<void> {
  const handle = await agent.call<number>('guest-file-open', { path, mode: append ? 'a' : 'w' });
  try {
    let at = 0;
    while (at < data.length) {
      const piece = data.subarray(at);
      const wrote = await agent.call<{ count: number }>('guest-file-write', { handle, 'buf-b64': piece.toString('base64') });
      if (wrote.count <= 0) throw new Error(`the agent wrote nothing to ${path}`);
      at += wrote.count;
    }
  } finally {
    await agent.call('guest-file-close', { handle }).catch(() => undefined);
  }
}

/** Up to `count` bytes of a guest file from `offset`; `eof` once the file has no more. */
export async function agentReadFile(agent: GuestAgent, path: string, offset: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
  const handle = await agent.call<number>('guest-file-open', { path, mode: 'r' });
  try {
    if (offset > 0) await agent.call('guest-file-seek', { handle, offset, whence: 'set' });
    const chunks: Buffer[] = [];
    let got = 0;
    let eof = false;
    while (got < count && !eof) {
      const read = await agent.call<{ 'buf-b64': string; eof: boolean }>('guest-file-read', { handle, count: count - got });
      const piece = Buffer.from(read['buf-b64'], 'base64');
      chunks.push(piece);
      got += piece.length;
      eof = read.eof || piece.length === 0;
    }
    return { data: Buffer.concat(chunks), eof };
  } finally {
    await agent.call('guest-file-close', { handle }).catch(() => undefined);
  }
}
