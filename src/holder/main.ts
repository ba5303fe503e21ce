import { loadBackend } from '../backend/index.js';
import { FleetboxError, toFleetboxError } from '../protocol/errors.js';
import { HolderOptionsSchema, RUNNER_FLAG } from '../protocol/holder-options.js';
import { Store } from '../store/layout.js';
import { readMemberConfig } from '../store/members.js';
import { validateName } from '../store/names.js';
import { Holder } from './holder.js';
import { fileLogger } from './log.js';
import { watchParent } from './parent-watch.js';

/** A bound holder whose owner never acks within this time gives up (the owner died early). */
const BIND_DEADLINE_MS = 30_000;

function parseArgs(argv: string[]): { cluster: string; members: string[] } {
  const at = argv.indexOf(RUNNER_FLAG);
  const cluster = argv[at + 1];
  const members = argv[at + 2]?.split(',').filter(Boolean) ?? [];
  if (at === -1 || !cluster || members.length === 0) {
    throw new FleetboxError('usage', `usage: main.js ${RUNNER_FLAG} <cluster> <member,...>`);
  }
  validateName(cluster, 'cluster name');
  members.forEach((m) => validateName(m, 'member name'));
  return { cluster, members };
}

async function run(): Promise<void> {
  const { cluster, members } = parseArgs(process.argv);
  const options = HolderOptionsSchema.parse(JSON.parse(process.env.FLEETBOX_OPTS ?? '{}'));
  const store = new Store(options.home).ensure();
  const log = fileLogger(store.holderLogPath(cluster), { cluster, pid: process.pid });
  const first = readMemberConfig(store, cluster, members[0] ?? '');
  if (!first) throw new FleetboxError('not_found', `member ${members[0]} has no config.json`);
  const backend = await loadBackend(first.backend, { accel: options.accel, ...(options.execPorts === false && { execPorts: false }) });
  const holder = new Holder({
    store,
    cluster,
    members,
    options,
    backend,
    log,
    onExit: (code) => process.exit(code),
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => void holder.shutdown(`received ${signal}`));
  }
  process.on('uncaughtException', (error) => {
    log.error('uncaught_exception', { message: error.message, stack: error.stack });
    void holder.shutdown('uncaught exception');
  });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled_rejection', { message: String(reason) });
  });
  if (options.mode === 'bound') {
    if (options.parentPid !== undefined) {
      watchParent(options.parentPid, options.parentPollMs, () => void holder.shutdown('parent process died'));
    }
    setTimeout(() => {
      if (!holder.hasOwner) void holder.shutdown('no owner acked in time');
    }, BIND_DEADLINE_MS).unref();
  }
  try {
    await holder.start();
  } catch (error) {
    const failure = toFleetboxError(error);
    log.error('holder_start_failed', { code: failure.code, message: failure.message });
    process.stderr.write(`fleetbox holder: ${failure.message}\n`);
    await holder.shutdown('start failed', failure.code === 'already_running' ? 3 : 1);
  }
}

if (process.argv.includes(RUNNER_FLAG)) {
  run().catch((error: unknown) => {
    process.stderr.write(`fleetbox holder: ${toFleetboxError(error).message}\n`);
    process.exit(2);
  });
}
