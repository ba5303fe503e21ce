import type { Server, Socket } from 'node:net';
import { crashPoint } from '../protocol/crash-point.js';
import { FleetboxError } from '../protocol/errors.js';
import { readLines, writeLine } from '../protocol/framing.js';
import { CONTROL_COMMANDS, ControlRequestSchema } from '../protocol/schemas.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { errorReply } from './member-socket.js';
import { listenUnix } from './socket-server.js';

/**
 * A connection must finish bind + ack within this (like REQUEST_IDLE_MS on member sockets): a
 * peer that connects and idles, or trickles, would otherwise hold a descriptor for ever, and
 * enough of them exhaust the holder's fd limit (member sockets then fail to accept).
 */
export const HANDSHAKE_DEADLINE_MS = 10_000;
/** Connections still in their handshake at once; beyond it a newcomer gets `busy` and is closed. */
export const MAX_HANDSHAKES = 64;

/** The version this holder speaks; tests may pretend to be another build. */
function holderVersion(): string {
  return process.env.FLEETBOX_TEST_HOLDER_VERSION ?? PROTOCOL_VERSION;
}

/** What the control socket needs of its holder: whether it takes an owner, and what to do with one. */
export interface OwnerControl {
  readonly mode: 'bound' | 'detached';
  readonly instance: string;
  /** The acked owner's connection; its end means the owner is gone. */
  armOwner(socket: Socket): void;
}

/**
 * bind → reply → ack. Only the ack arms the death-watch: a connection that closes before it
 * (a retry, a probe, a fuzzer) tears nothing down. One owner at a time.
 */
export function serveControlSocket(holder: OwnerControl, socketPath: string): Promise<Server> {
  let owner: Socket | undefined;
  let handshakes = 0;
  return listenUnix(socketPath, (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    if (handshakes >= MAX_HANDSHAKES) {
      // Nothing is read from it. Destroyed as soon as the reply is flushed, not on the peer's EOF:
      // a flooding peer never sends one, and a half-closed socket still holds its descriptor.
      writeLine(socket, errorReply(new FleetboxError('busy', `too many control connections in progress (${MAX_HANDSHAKES}); retry later`)));
      socket.end(() => socket.destroy());
      return;
    }
    handshakes++;
    let inHandshake = true;
    // A deadline for the whole handshake, not an idle timer, so a byte now and then does not
    // extend it; the owner's acked connection leaves it (its EOF is the death-watch).
    const deadline = setTimeout(() => socket.destroy(), HANDSHAKE_DEADLINE_MS);
    const endHandshake = () => {
      if (!inHandshake) return;
      inHandshake = false;
      handshakes--;
      clearTimeout(deadline);
    };
    socket.once('close', endHandshake);
    let bound = false;
    const reader = readLines(socket);
    reader.onError((error) => {
      writeLine(socket, { ok: false, error: { code: 'bad_request', message: error.message } });
      // The peer may still be sending; close once the reply is flushed instead of waiting for it.
      socket.destroySoon();
    });
    reader.onValue((value) => {
      if (socket === owner) return; // the owner has nothing more to say; its EOF is what counts
      const cmd = typeof value === 'object' && value !== null ? (value as { cmd?: unknown }).cmd : undefined;
      if (typeof cmd === 'string' && !(CONTROL_COMMANDS as readonly string[]).includes(cmd)) {
        writeLine(socket, errorReply(new FleetboxError('unknown_command', `unknown command ${JSON.stringify(cmd.slice(0, 40))}; expected bind or ack`)));
        return;
      }
      const parsed = ControlRequestSchema.safeParse(value);
      if (!parsed.success) {
        writeLine(socket, errorReply(new FleetboxError('bad_request', `invalid request: ${parsed.error.issues[0]?.message ?? 'unknown problem'}`)));
        return;
      }
      const request = parsed.data;
      if (request.cmd === 'bind') {
        if (request.version !== holderVersion()) {
          writeLine(socket, errorReply(new FleetboxError('version_mismatch', `holder speaks protocol ${holderVersion()}, client speaks ${request.version}`)));
          return;
        }
        if (holder.mode !== 'bound') {
          writeLine(socket, errorReply(new FleetboxError('busy', 'this holder is detached; it takes no owner')));
          return;
        }
        if (owner) {
          writeLine(socket, errorReply(new FleetboxError('busy', 'this holder already has an owner')));
          return;
        }
        bound = true;
        writeLine(socket, { ok: true, version: holderVersion(), pid: process.pid, instance: holder.instance });
        crashPoint('holder-before-ack');
        return;
      }
      // ack
      if (!bound || owner) {
        writeLine(socket, errorReply(new FleetboxError('bad_request', 'ack without a successful bind on this connection')));
        return;
      }
      owner = socket;
      endHandshake();
      writeLine(socket, { ok: true });
      holder.armOwner(socket);
    });
  });
}
