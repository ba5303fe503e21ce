import { createServer, type Server } from 'node:net';
import type { Logger } from '../host/logger.js';
import type { Dialer } from '../net/dialer.js';

interface Forward {
  server: Server;
  hostPort: number;
}

/**
 * Loopback port forwards owned by the holder: 127.0.0.1:<ephemeral> → member:<port>. One per
 * (member, port), reused when asked again, all closed when the member stops or the holder exits.
 */
export class Forwards {
  private readonly byMember = new Map<string, Map<number, Forward>>();

  constructor(private readonly log: Logger) {}

  async open(member: string, dialer: Dialer, ip: string, port: number): Promise<number> {
    const existing = this.byMember.get(member)?.get(port);
    if (existing) return existing.hostPort;
    // allowHalfOpen: a client that shuts down its sending side ("that is all my request") must
    // still get the member's answer; each direction ends on its own through pipe().
    const server = createServer({ allowHalfOpen: true }, (client) => {
      client.on('error', () => client.destroy());
      client.pause();
      dialer.dial(ip, port).then(
        (upstream) => {
          upstream.on('error', () => client.destroy());
          client.on('close', () => upstream.destroy());
          upstream.on('close', () => client.destroy());
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        },
        (error: unknown) => {
          this.log.warn('forward_dial_failed', { member, port, message: String(error) });
          client.destroy();
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const hostPort = typeof address === 'object' && address ? address.port : 0;
    const forMember = this.byMember.get(member) ?? new Map<number, Forward>();
    forMember.set(port, { server, hostPort });
    this.byMember.set(member, forMember);
    this.log.info('forward_open', { member, port, hostPort });
    return hostPort;
  }

  closeMember(member: string): void {
    for (const [port, forward] of this.byMember.get(member) ?? []) {
      forward.server.close();
      this.log.info('forward_closed', { member, port, hostPort: forward.hostPort });
    }
    this.byMember.delete(member);
  }

  closeAll(): void {
    for (const member of [...this.byMember.keys()]) this.closeMember(member);
  }
}
