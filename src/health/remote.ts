import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { FleetboxError } from '../protocol/errors.js';
import { rollup, summariseCluster } from './rollup.js';
import { FleetSnapshotSchema, type FleetSnapshot, type HostInfo, type Issue, type MemberHealth, type Warning } from '../protocol/health.js';
import { TIME_HEADER } from './remote-header.js';
import { estimateSkew, type ClockSample } from './skew.js';
import { inertStrings } from './inert.js';

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const SAMPLES = 3;

export interface RemoteOptions {
  /** Deadline per host for all its requests together. */
  timeoutMs: number;
  token?: string | undefined;
  /** Files: CA to trust, and a client certificate + key for mutual TLS. Any of them means https. */
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined };
  /** A host whose clock is further off than this gets an amber issue. */
  skewWarnMs?: number;
  issueLimit?: number;
  /** Keep only these members or clusters. */
  names?: string[];
}

interface Exchange {
  status: number;
  body: string;
  sample: ClockSample | undefined;
}

type Requester = (url: URL, options: https.RequestOptions, callback: (res: http.IncomingMessage) => void) => http.ClientRequest;

function tlsOptions(tls: RemoteOptions['tls']): https.RequestOptions | undefined {
  if (!tls || (!tls.ca && !tls.cert && !tls.key)) return undefined;
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw new FleetboxError('usage', '--cert and --key go together (mutual TLS)');
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new FleetboxError('usage', `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  };
  return {
    ...(tls.ca && { ca: read(tls.ca, '--ca') }),
    ...(tls.cert && { cert: read(tls.cert, '--cert') }),
    ...(tls.key && { key: read(tls.key, '--key') }),
  };
}

/** `hostA:7070` → http://hostA:7070/api/fleet (https when TLS options are given); full URLs are kept. */
export function fleetUrl(host: string, secure: boolean): URL {
  const base = /^https?:\/\//.test(host) ? host : `${secure ? 'https' : 'http'}://${host}`;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new FleetboxError('usage', `--hosts: ${JSON.stringify(host)} is not host:port`);
  }
  url.pathname = '/api/fleet';
  url.search = '';
  return url;
}

function exchange(url: URL, method: 'GET' | 'HEAD', options: https.RequestOptions, deadline: number): Promise<Exchange> {
  const requester: Requester = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return reject(new Error('timed out'));
    const sentAt = Date.now();
    const req = requester(url, { ...options, method, agent: false }, (res) => {
      const receivedAt = Date.now();
      const stamp = Number(res.headers[TIME_HEADER]);
      const sample = Number.isFinite(stamp) && stamp > 0 ? { sentAt, receivedAt, remoteAt: stamp } : undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), sample });
      });
      res.on('error', (error) => reject(error));
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${remaining} ms`)), remaining);
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(error.code ?? error.message));
    });
    req.end();
  });
}

type HostResult = { host: string; snapshot: FleetSnapshot | undefined; info: HostInfo; kind?: 'host_unreachable' | 'host_bad_answer' };

async function fetchHost(host: string, options: RemoteOptions, requestOptions: https.RequestOptions, secure: boolean): Promise<HostResult> {
  const url = fleetUrl(host, secure);
  const deadline = Date.now() + options.timeoutMs;
  const failed = (kind: HostResult['kind'], error: string): HostResult => ({
    host,
    snapshot: undefined,
    info: { host, ok: false, skewMs: null, rttMs: null, error },
    kind,
  });
  let first: Exchange;
  try {
    first = await exchange(url, 'GET', requestOptions, deadline);
  } catch (error) {
    return failed('host_unreachable', `${host} did not answer: ${(error as Error).message}`);
  }
  if (first.status !== 200) {
    const hint = first.status === 401 ? ' (wrong or missing --token?)' : '';
    return failed('host_bad_answer', `${host} answered HTTP ${first.status}${hint}`);
  }
  let parsed: FleetSnapshot;
  try {
    parsed = inertStrings(FleetSnapshotSchema.parse(JSON.parse(first.body)));
  } catch {
    return failed('host_bad_answer', `${host} answered something that is not a fleetbox snapshot`);
  }
  // More clock samples, sequentially, within what is left of the host's deadline.
  const samples = first.sample ? [first.sample] : [];
  for (let i = 1; i < SAMPLES; i++) {
    try {
      const extra = await exchange(url, 'HEAD', requestOptions, deadline);
      if (extra.sample) samples.push(extra.sample);
    } catch {
      break;
    }
  }
  const skew = estimateSkew(samples);
  return { host, snapshot: parsed, info: { host, ok: true, skewMs: skew?.offsetMs ?? null, rttMs: skew?.rttMs ?? null } };
}

/**
 * `status --hosts`: every host's /api/fleet at once (each with its own deadline), rows tagged with
 * their host, clock skew estimated per host, and one rollup over everything. A host that is
 * down or answers garbage is a warning and an issue; the others' rows are still shown.
 */
export async function collectRemote(hosts: string[], options: RemoteOptions): Promise<FleetSnapshot> {
  const tls = tlsOptions(options.tls);
  const requestOptions: https.RequestOptions = {
    ...tls,
    headers: { accept: 'application/json', ...(options.token && { authorization: `Bearer ${options.token}` }) },
  };
  const results = await Promise.all(hosts.map((host) => fetchHost(host, options, requestOptions, tls !== undefined)));
  const skewWarnMs = options.skewWarnMs ?? 500;
  const wanted = options.names && options.names.length > 0 ? new Set(options.names) : undefined;
  const members: MemberHealth[] = [];
  const clusters: FleetSnapshot['clusters'] = [];
  const warnings: Warning[] = [];
  const extraIssues: Issue[] = [];
  for (const result of results) {
    if (!result.snapshot) {
      const message = result.info.error ?? `${result.host} failed`;
      warnings.push({ subject: result.host, message });
      extraIssues.push({
        level: 'red',
        kind: result.kind ?? 'host_unreachable',
        subject: result.host,
        host: result.host,
        message,
        action: `check that 'fleetbox dashboard' runs on ${result.host} and is reachable from here`,
      });
      continue;
    }
    const keep = (m: MemberHealth) => !wanted || wanted.has(m.name) || wanted.has(m.cluster);
    const rows = result.snapshot.members.filter(keep).map((m) => ({ ...m, host: result.host }));
    members.push(...rows);
    for (const c of result.snapshot.clusters) {
      const own = rows.filter((m) => m.cluster === c.name);
      if (wanted && own.length === 0) continue;
      clusters.push({ ...summariseCluster(c.name, own, c.holder, c.checks), host: result.host });
    }
    warnings.push(...result.snapshot.warnings.map((w) => ({ subject: `${result.host}/${w.subject}`, message: `${result.host}: ${w.message}` })));
    const skew = result.info.skewMs;
    if (skew !== null && Math.abs(skew) > skewWarnMs) {
      const message = `${result.host}'s clock is ${Math.round(Math.abs(skew))} ms ${skew > 0 ? 'ahead of' : 'behind'} this machine (warn above ${skewWarnMs} ms)`;
      warnings.push({ subject: result.host, message });
      extraIssues.push({ level: 'amber', kind: 'clock_skew', subject: result.host, host: result.host, message, action: `check time sync on ${result.host} (timedatectl)` });
    }
  }
  return rollup({
    members,
    clusters,
    warnings,
    extraIssues,
    hosts: results.map((r) => r.info),
    now: Date.now(),
    ...(options.issueLimit !== undefined && { issueLimit: options.issueLimit }),
  });
}
