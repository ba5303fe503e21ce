import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { FleetboxError } from '../protocol/errors.js';
import { TIME_HEADER } from '../health/remote-header.js';
import type { FleetSnapshot } from '../protocol/health.js';
import { allowedHosts, bearerMatches, hostMatches, isLoopback } from './auth.js';
import { SECURITY_HEADERS } from './headers.js';
import { renderPage } from './html.js';

/** Longer request targets are refused with 400 before any routing. */
export const MAX_URL_LENGTH = 2048;
/** Snapshots are reused for at most this long: 50 clients refreshing cost one fan-out a second. */
export const MAX_CACHE_MS = 1_000;
/** A client must have sent its whole request (headers included) within this, or it is cut off. */
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * How often Node enforces REQUEST_TIMEOUT_MS. Its default (30 s) let slow-loris clients live
 * 40 s past a 10 s timeout; the check walks only the open connections, so 1 s is cheap.
 */
const TIMEOUT_CHECK_MS = 1_000;
/** Open connections at most; beyond it new ones are closed at once instead of starving the process of descriptors. */
export const MAX_CONNECTIONS = 1_024;

export type DashboardLog = (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void;

export interface DashboardOptions {
  /** Produces a fresh snapshot (the local fan-out); its errors never reach a client. */
  snapshot(): Promise<FleetSnapshot>;
  bind?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Required when `bind` is not a loopback address. */
  token?: string | undefined;
  /** Serve https with this certificate; with `ca`, clients must present a certificate it signed (mutual TLS). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer | undefined };
  cacheMs?: number;
  /** Host names served besides loopback and the bound address (DNS rebinding defence). */
  allowHosts?: readonly string[];
  maxConnections?: number;
  refreshSeconds?: number;
  log?: DashboardLog;
}

export interface Dashboard {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Rendered {
  at: number;
  json: string;
  html?: string;
  status: FleetSnapshot['summary']['status'];
}

/**
 * The read-only dashboard: `GET /fleet` (HTML) and `GET /api/fleet` (the snapshot). Every
 * response, errors included, carries the security headers; only GET and HEAD exist; anything
 * unexpected is a short generic answer, with the details in the log only.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const bind = options.bind ?? '127.0.0.1';
  const token = options.token || undefined;
  if (!isLoopback(bind) && !token) {
    throw new FleetboxError('usage', `binding the dashboard to ${bind} exposes it beyond this machine: pass --token-file (or --token, or set FLEETBOX_DASHBOARD_TOKEN)`);
  }
  const cacheMs = Math.min(options.cacheMs ?? MAX_CACHE_MS, MAX_CACHE_MS);
  const refreshSeconds = options.refreshSeconds ?? 5;
  const log: DashboardLog = options.log ?? (() => {});
  const hosts = allowedHosts(bind, options.allowHosts ?? [], Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  const defaultPort = options.tls ? 443 : 80;
  let port = 0;
  let cached: Rendered | undefined;
  let inFlight: Promise<Rendered> | undefined;

  /** One fan-out at a time; concurrent requests share it, and its result for up to cacheMs. */
  const current = (): Promise<Rendered> => {
    if (cached && Date.now() - cached.at < cacheMs) return Promise.resolve(cached);
    inFlight ??= options
      .snapshot()
      .then((snapshot) => {
        cached = { at: Date.now(), json: JSON.stringify(snapshot), status: snapshot.summary.status };
        const html = renderPage(snapshot, refreshSeconds);
        cached.html = html;
        return cached;
      })
      .finally(() => (inFlight = undefined));
    return inFlight;
  };

  const send = (res: http.ServerResponse, head: boolean, status: number, type: string, body: string, extra: Record<string, string> = {}) => {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      [TIME_HEADER]: String(Date.now()),
      'content-type': type,
      'content-length': String(Buffer.byteLength(body)),
      ...extra,
    });
    res.end(head ? undefined : body);
  };
  const text = 'text/plain; charset=utf-8';

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? '';
    const head = method === 'HEAD';
    const target = req.url ?? '';
    if (target.length > MAX_URL_LENGTH) return send(res, head, 400, text, 'bad request: URL too long\n');
    if (!hostMatches(req.headers.host, hosts, port, defaultPort)) {
      log('warn', 'host_refused', { host: (req.headers.host ?? '').slice(0, 100) });
      return send(res, head, 421, text, 'misdirected request\n', { connection: 'close' });
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, false, 405, text, 'method not allowed: this dashboard is read-only\n', { allow: 'GET, HEAD' });
    if (token && !bearerMatches(req.headers.authorization, token)) {
      return send(res, head, 401, text, 'unauthorized\n', { 'www-authenticate': 'Bearer realm="fleetbox"' });
    }
    // Routing on the raw path, never decoded: /fleet%00 and /../x simply are not routes.
    const path = target.split('?', 1)[0];
    if (path === '/') return send(res, head, 302, text, 'see /fleet\n', { location: '/fleet' });
    if (path !== '/fleet' && path !== '/api/fleet') return send(res, head, 404, text, 'not found\n');
    const json = path === '/api/fleet';
    // The request is complete; waiting on our own fan-out (up to --timeout) is not client idleness.
    req.socket.setTimeout(0);
    current().then(
      (rendered) => {
        if (json) send(res, head, 200, 'application/json; charset=utf-8', rendered.json);
        else send(res, head, 200, 'text/html; charset=utf-8', rendered.html ?? '');
      },
      (error: unknown) => {
        log('error', 'snapshot_failed', { message: error instanceof Error ? error.message : String(error) });
        if (json) send(res, head, 500, 'application/json; charset=utf-8', '{"error":"internal error"}\n');
        else send(res, head, 500, text, 'internal error\n');
      },
    );
  };

  const timeouts: http.ServerOptions = { headersTimeout: REQUEST_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_MS };
  const server = options.tls
    ? https.createServer(
        {
          ...timeouts,
          handshakeTimeout: REQUEST_TIMEOUT_MS,
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.ca && { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }),
        },
        handle,
      )
    : http.createServer(timeouts, handle);
  server.keepAliveTimeout = 5_000;
  // Silence as well: a connection that sends nothing (not even a TLS hello) is not yet a request.
  server.timeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
  server.maxHeadersCount = 100;
  // Requests Node cannot even parse (over-long headers, garbage) still get a short answer with our headers.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    log('warn', 'client_error', { code: error.code ?? error.message });
    if (!socket.writable) return socket.destroy();
    const headers = Object.entries(SECURITY_HEADERS).map(([k, v]) => `${k}: ${v}`).join('\r\n');
    const [status, body] = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['408 Request Timeout', 'request timeout\n'] : ['400 Bad Request', 'bad request\n'];
    // Destroyed once the answer is flushed, not on the client's EOF: a slow-loris client that
    // never reads never sends one, and a half-closed socket still holds its descriptor.
    socket.end(`HTTP/1.1 ${status}\r\n${headers}\r\ncontent-type: ${text}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new FleetboxError(error.code === 'EADDRINUSE' ? 'busy' : 'io', `cannot listen on ${bind}:${options.port ?? 7070}: ${error.code ?? error.message}`)),
    );
    server.listen(options.port ?? 7070, bind, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = bind.includes(':') ? `[${bind}]` : bind;
  const url = `${options.tls ? 'https' : 'http'}://${shownHost}:${port}`;
  log('info', 'dashboard_listening', { url, auth: token ? 'bearer' : 'none', tls: options.tls ? (options.tls.ca ? 'mutual' : 'server') : 'none' });
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
