import type { Block } from './blocks.js';

/** Where one member sits on its cluster's network. */
export interface MemberNetwork {
  ip: string;
  prefix: number;
  gateway: string | null;
  /** Network namespace the member's process must run in (bridge networks), else null. */
  namespace: string | null;
  /** Tap device inside the namespace (qemu), else null. */
  tap: string | null;
  /** Deterministic MAC derived from the member name. */
  mac: string;
}

/** Where a new network must put its members (a fork: the subnet and addresses of its snapshot). */
export interface NetworkPlan {
  subnet: string;
  addresses: Record<string, string>;
}

/** A cluster's network, owned by its holder for as long as it runs. */
export interface ClusterNetwork {
  readonly cluster: string;
  /** Gives `member` its address (the recorded one on a re-join) and any device it needs. */
  attach(member: string): Promise<MemberNetwork>;
  /** Releases the member's device; its address stays recorded for a re-join. */
  detach(member: string): Promise<void>;
  /** Tears the whole network down and removes its record once the teardown is verified. */
  close(): Promise<void>;
  /**
   * Drops exactly these directions of member traffic (fault injection), replacing what was
   * dropped before; resolves once in force. Networks that cannot filter throw `usage`.
   */
  block(blocks: readonly Block[]): Promise<void>;
}
