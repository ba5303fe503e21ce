import { createServer } from 'node:net';

/**
 * The default member program of the process backend: a TCP server on the member's own loopback
 * address that greets with its name and echoes what it is sent.
 */
const name = process.env.FLEETBOX_NAME ?? 'member';
const host = process.env.FLEETBOX_IP ?? '127.0.0.1';
const port = Number(process.env.FLEETBOX_PORT ?? 7000);

const server = createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.write(`fleetbox ${name}\n`);
  socket.pipe(socket);
});
server.listen(port, host, () => {
  process.stdout.write(`${name} listening on ${host}:${port}\n`);
});
server.on('error', (error) => {
  process.stderr.write(`${name}: ${error.message}\n`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    process.stdout.write(`${name} stopping on ${signal}\n`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
