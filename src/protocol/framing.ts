import type { Socket } from 'node:net';
import ndjson from 'ndjson';
import { MAX_LINE_BYTES } from './version.js';

/** Why a line could not be read: the peer sent too much, or something that is not JSON. */
export type FrameError = { kind: 'too_long' | 'not_json'; message: string };

export interface LineReader {
  /** Called once per parsed JSON value, in order. */
  onValue(handler: (value: unknown) => void): void;
  /** Called at most once; the reader stops delivering values afterwards. */
  onError(handler: (error: FrameError) => void): void;
}

/**
 * Reads newline-delimited JSON from a socket with the `ndjson` parser. split2 only measures the
 * unfinished tail of its buffer, so a complete over-long line that arrives in one chunk is caught
 * again here by its own length.
 */
export function readLines(socket: Socket, maxLineBytes = MAX_LINE_BYTES): LineReader {
  const parser = ndjson.parse({ strict: true, maxLength: maxLineBytes } as ndjson.ParseOptions);
  let valueHandler: (value: unknown) => void = () => {};
  let errorHandler: (error: FrameError) => void = () => {};
  let failed = false;
  const fail = (error: FrameError) => {
    if (failed) return;
    failed = true;
    socket.unpipe(parser);
    parser.destroy();
    errorHandler(error);
  };
  let bytesInLine = 0;
  socket.on('data', (chunk: Buffer) => {
    // Measures every line as it streams in, so an endless line is refused before it is buffered.
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      if (bytesInLine + (nl - start) > maxLineBytes) break;
      bytesInLine = 0;
      start = nl + 1;
    }
    if (chunk.indexOf(0x0a, start) === -1) bytesInLine += chunk.length - start;
    if (bytesInLine > maxLineBytes || chunk.indexOf(0x0a, start) !== -1) {
      fail({ kind: 'too_long', message: `line longer than ${maxLineBytes} bytes` });
    }
  });
  parser.on('data', (value: unknown) => {
    if (!failed) valueHandler(value);
  });
  // A `null` line ends the ndjson stream (push(null)) instead of arriving as a value; while the
  // peer is still connected that must be answered as a bad request, not silently swallowed.
  parser.on('end', () => {
    if (!socket.readableEnded) fail({ kind: 'not_json', message: 'request is null, not a JSON object' });
  });
  parser.on('error', (error: Error) => {
    fail(
      /maximum buffer/.test(error.message)
        ? { kind: 'too_long', message: `line longer than ${maxLineBytes} bytes` }
        : { kind: 'not_json', message: 'request is not valid JSON' },
    );
  });
  socket.pipe(parser);
  return {
    onValue: (handler) => (valueHandler = handler),
    onError: (handler) => (errorHandler = handler),
  };
}

/** Writes one JSON value as one line; a closed socket is not an error worth crashing over. */
export function writeLine(socket: Socket, value: unknown): boolean {
  if (socket.destroyed || !socket.writable) return false;
  return socket.write(JSON.stringify(value) + '\n');
}
