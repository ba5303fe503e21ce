import { chmodSync, unlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * Runs inside a cluster's network namespace (`ip netns exec <ns> node ns-connector.js <socket>`).
 * Unix sockets live in the file system, not in a network namespace, so the holder on the host
 * reaches this program through one, asks for "<ip> <port>\n", and gets a byte pipe to that
 * guest port. This is how loopback forwards cross into the namespace without any host route.
 */
const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: ns-connector.js <unix-socket-path>\n');
  process.exit(2);
}
try {
  unlinkSync(path);
} catch {
  // not there
}
const server = createServer({ allowHalfOpen: true }, (client) => {
  client.on('error', () => client.destroy());
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(0x0a);
    if (nl === -1) {
      if (head.length > 64) client.destroy();
      return;
    }
    client.off('data', onData);
    client.pause();
    const match = /^(\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5})$/.exec(head.subarray(0, nl).toString());
    if (!match) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: match[1], port: Number(match[2]), allowHalfOpen: true });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.once('connect', () => {
      const rest = head.subarray(nl + 1);
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };
  client.on('data', onData);
});
server.listen(path, () => {
  chmodSync(path, 0o600);
  process.stdout.write('ready\n');
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)));
