import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { FleetboxError } from '../../protocol/errors.js';
import { seconds, wholeNumber } from '../numbers.js';
import { notice, openStore } from '../output.js';

/** --allow-host: a bare name or address; the port is always the dashboard's own. */
function hostName(value: string, previous: string[] = []): string[] {
  if (!/^([a-zA-Z0-9.-]+|\[?[0-9a-fA-F:.]+\]?)$/.test(value) || /^[a-zA-Z0-9.-]+:\d+$/.test(value)) {
    throw new InvalidArgumentError('expected a host name or address, without a port');
  }
  return [...previous, value];
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new FleetboxError('usage', `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

interface DashboardCliOptions {
  port: number;
  bind: string;
  token?: string;
  tokenFile?: string;
  allowHost?: string[];
  cert?: string;
  key?: string;
  ca?: string;
  timeout: number;
}

/** `fleetbox dashboard`: serves this machine's fleet snapshot read-only until interrupted. */
export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('read-only web page (/fleet) and JSON API (/api/fleet) of this machine\'s fleet health')
    .option('--port <port>', 'TCP port (0: any free port)', wholeNumber(0, 65535, 'a port'), 7070)
    .option('--bind <address>', 'address to listen on; anything but loopback needs a token', '127.0.0.1')
    .option('--token <token>', 'require "Authorization: Bearer <token>"; visible to every user in ps, prefer --token-file or $FLEETBOX_DASHBOARD_TOKEN')
    .option('--token-file <file>', 'read the token from this file (one line; refused if group or others can read or write it)')
    .option('--allow-host <name>', 'also answer requests whose Host is <name> (repeatable); by default only loopback names and the bound address', hostName)
    .option('--cert <file>', 'serve https with this certificate (PEM)')
    .option('--key <file>', 'private key of --cert (PEM)')
    .option('--ca <file>', 'with --cert: require client certificates signed by this CA (mutual TLS)')
    .option('--timeout <seconds>', 'per-member answer deadline of each snapshot', seconds(600), 2)
    .addHelpText(
      'after',
      `
Token: --token, else --token-file, else $FLEETBOX_DASHBOARD_TOKEN, else $FLEETBOX_TOKEN.
Requests whose Host header is not localhost, 127.0.0.1, [::1], the bound address (any address of
this machine for 0.0.0.0 / ::) or an --allow-host name, on this port, get 421 (DNS rebinding).

Examples:
  $ fleetbox dashboard                           http://127.0.0.1:7070/fleet
  $ fleetbox dashboard --bind 0.0.0.0 --token-file ~/.fleetbox-token --cert c.pem --key k.pem --ca ca.pem
  $ fleetbox dashboard --bind 0.0.0.0 --token-file t --allow-host thishost.example
  $ fleetbox status --hosts thishost:7070        read it from another machine`,
    )
    .action(async (opts: DashboardCliOptions) => {
      if (opts.token !== undefined && opts.tokenFile !== undefined) throw new FleetboxError('usage', '--token and --token-file: pass one of them');
      if (Boolean(opts.cert) !== Boolean(opts.key)) throw new FleetboxError('usage', '--cert and --key go together');
      if (opts.ca && !opts.cert) throw new FleetboxError('usage', '--ca (client certificates) needs --cert and --key');
      const store = openStore();
      const [{ startDashboard }, { isLoopback, readTokenFile }, { collectLocal }] = await Promise.all([
        import('../../dashboard/server.js'),
        import('../../dashboard/auth.js'),
        import('../../health/local.js'),
      ]);
      const token = opts.token ?? (opts.tokenFile !== undefined ? readTokenFile(opts.tokenFile) : undefined) ?? (process.env.FLEETBOX_DASHBOARD_TOKEN || process.env.FLEETBOX_TOKEN);
      const timeoutMs = Math.round(opts.timeout * 1000);
      const dashboard = await startDashboard({
        bind: opts.bind,
        port: opts.port,
        token,
        allowHosts: opts.allowHost ?? [],
        ...(opts.cert && opts.key && {
          tls: { cert: readPem(opts.cert, '--cert'), key: readPem(opts.key, '--key'), ca: opts.ca ? readPem(opts.ca, '--ca') : undefined },
        }),
        snapshot: () => collectLocal(store, { timeoutMs }),
        log: (level, event, fields) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }) + '\n'),
      });
      if (!isLoopback(opts.bind)) {
        notice(
          `warning: the dashboard listens on ${opts.bind}, beyond this machine; it is read-only but its only protection is the bearer token${opts.ca ? ' and client certificates' : ''}`,
        );
      }
      notice(`fleetbox dashboard: ${dashboard.url}/fleet (JSON: ${dashboard.url}/api/fleet); Ctrl-C stops it`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await dashboard.close();
    });
}
