import { FleetboxError } from '../protocol/errors.js';
import { MAX_FILE_PIECE, ReadReplySchema, WriteReplySchema } from '../protocol/schemas.js';
import { request } from '../control/client.js';
import type { HolderTarget } from './target.js';

/** Per-piece budget: one piece is at most 512 KiB, a few agent calls. */
const PIECE_TIMEOUT_MS = 60_000;

/**
 * Writes `data` to a file in a member through its holder (for a VM: the guest agent, no process
 * started), in pieces that each fit one request. The file is created (or emptied) first.
 */
export async function writeMemberFile(target: HolderTarget, path: string, data: Buffer): Promise<void> {
  const socket = target.store.memberSocketPath(target.config.name);
  let at = 0;
  do {
    const piece = data.subarray(at, at + MAX_FILE_PIECE);
    await request(socket, { cmd: 'write', path, data: piece.toString('base64'), append: at > 0 }, WriteReplySchema, { timeoutMs: PIECE_TIMEOUT_MS });
    at += piece.length;
  } while (at < data.length);
}

/**
 * Writes what `source` yields to a file in a member, piece by piece as it comes: nothing is held
 * whole in memory (a 500 MB archive travels 512 KiB at a time). `first` is what was read already.
 */
export async function writeMemberFileFrom(target: HolderTarget, path: string, first: Buffer, source: AsyncIterable<Buffer>, deadline = Number.POSITIVE_INFINITY): Promise<number> {
  const socket = target.store.memberSocketPath(target.config.name);
  let written = 0;
  let pending: Buffer[] = [first];
  let size = first.length;
  const flush = async (all: boolean) => {
    let buffered = Buffer.concat(pending);
    while (buffered.length >= MAX_FILE_PIECE || (all && (buffered.length > 0 || written === 0))) {
      // Checked between pieces only: a piece cut short by the deadline would still land later.
      if (Date.now() >= deadline) throw new FleetboxError('exec_timeout', `writing ${path} on ${target.config.name} did not finish in time (${written} bytes written); give a longer timeout`);
      const piece = buffered.subarray(0, MAX_FILE_PIECE);
      await request(socket, { cmd: 'write', path, data: piece.toString('base64'), append: written > 0 }, WriteReplySchema, { timeoutMs: PIECE_TIMEOUT_MS });
      written += piece.length;
      buffered = buffered.subarray(piece.length);
      if (piece.length === 0) break;
    }
    pending = [buffered];
    size = buffered.length;
  };
  for await (const chunk of source) {
    pending.push(chunk);
    size += chunk.length;
    if (size >= MAX_FILE_PIECE) await flush(false);
  }
  await flush(true);
  return written;
}

/** Reads a member's file piece by piece, handing each to `sink`; resolves with the byte count. */
export async function readMemberFile(target: HolderTarget, path: string, sink: (piece: Buffer) => void): Promise<number> {
  const socket = target.store.memberSocketPath(target.config.name);
  let offset = 0;
  for (;;) {
    const reply = await request(socket, { cmd: 'read', path, offset, count: MAX_FILE_PIECE }, ReadReplySchema, { timeoutMs: PIECE_TIMEOUT_MS });
    const piece = Buffer.from(reply.read.data, 'base64');
    if (piece.length > 0) sink(piece);
    offset += piece.length;
    if (reply.read.eof || piece.length === 0) return offset;
  }
}
