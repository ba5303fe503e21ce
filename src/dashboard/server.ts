import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { FleetboxError } from '../protocol/errors.js';
import { TIME_HEADER } from '../health/remote-header.js';
import type { FleetSnapshot } from '../health/schema.js';
import { bearerMatches, isLoopback } from './auth.js';
import { SECURITY_HEADERS } from './headers.js';
import { renderPage } from './html.js';

/** Longer request targets are refused with 400 before any routing. */
export const MAX_URL_LENGTH = 2048;
/** Snapshots are reused for at most this long: 50 clients refreshing cost one fan-out a second. */
export const MAX_CACHE_MS = 1_000;

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
    throw new FleetboxError('usage', `binding the dashboard to ${bind} exposes it beyond this machine: pass --token (or set FLEETBOX_TOKEN)`);
  }
  const cacheMs = Math.min(options.cacheMs ?? MAX_CACHE_MS, MAX_CACHE_MS);
  const refreshSeconds = options.refreshSeconds ?? 5;
  const log: DashboardLog = options.log ?? (() => {});
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
    if (method !== 'GET' && method !== 'HEAD') return send(res, false, 405, text, 'method not allowed: this dashboard is read-only\n', { allow: 'GET, HEAD' });
    if (token && !bearerMatches(req.headers.authorization, token)) {
      return send(res, head, 401, text, 'unauthorized\n', { 'www-authenticate': 'Bearer realm="fleetbox"' });
    }
    // Routing on the raw path, never decoded: /fleet%00 and /../x simply are not routes.
    const path = target.split('?', 1)[0];
    if (path === '/') return send(res, head, 302, text, 'see /fleet\n', { location: '/fleet' });
    if (path !== '/fleet' && path !== '/api/fleet') return send(res, head, 404, text, 'not found\n');
    const json = path === '/api/fleet';
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

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca && { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }) }, handle)
    : http.createServer(handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 100;
  // Requests Node cannot even parse (over-long headers, garbage) still get a short answer with our headers.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    log('warn', 'client_error', { code: error.code ?? error.message });
    if (!socket.writable) return socket.destroy();
    const headers = Object.entries(SECURITY_HEADERS).map(([k, v]) => `${k}: ${v}`).join('\r\n');
    socket.end(`HTTP/1.1 400 Bad Request\r\n${headers}\r\ncontent-type: ${text}\r\ncontent-length: 12\r\nconnection: close\r\n\r\nbad request\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new FleetboxError(error.code === 'EADDRINUSE' ? 'busy' : 'io', `cannot listen on ${bind}:${options.port ?? 7070}: ${error.code ?? error.message}`)),
    );
    server.listen(options.port ?? 7070, bind, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
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
