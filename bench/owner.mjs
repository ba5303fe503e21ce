#!/usr/bin/env node
// Stand-in for a test process: starts a bound 1-member cluster, prints every PID it owns (holder
// and members), then waits to be killed. Usage: owner.mjs <backend> <name>
import { startCluster } from '../dist/index.js';
import { Store } from '../dist/store/layout.js';
import { liveHolder } from '../dist/store/pidfile.js';

const [backend = 'process', name = 'owner'] = process.argv.slice(2);
const cluster = await startCluster({ name, backend });
const store = new Store();
const holder = liveHolder(store.pidfilePath(name, `${name}-1`))?.pid;
process.stdout.write(JSON.stringify([holder, ...cluster.members.map((m) => m.pid)]) + '\n');
setInterval(() => {}, 1 << 30);
