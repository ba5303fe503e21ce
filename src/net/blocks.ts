import { findBinary } from '../host/binaries.js';
import { runCommand } from '../host/run-command.js';
import { FleetboxError } from '../protocol/errors.js';

/** One direction of traffic the cluster's bridge drops: from `from` to `to` (IPv4 addresses, or `*`: any). */
export interface Block {
  from: string;
  to: string;
}

/** The nftables table fleetbox owns inside a cluster's namespace; nothing else is touched. */
const TABLE = 'fleetbox_faults';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The whole table as one nft script: replaced atomically, so a partial rule set never applies. */
export function blockRuleset(blocks: readonly Block[]): string {
  const rules = blocks.map((b) => {
    const ends = [b.from, b.to];
    if (ends.some((end) => end !== '*' && !IPV4.test(end)) || ends.every((end) => end === '*')) {
      throw new FleetboxError('internal', `not a pair of IPv4 addresses: ${b.from} → ${b.to}`);
    }
    return `    ${b.from === '*' ? '' : `ip saddr ${b.from} `}${b.to === '*' ? '' : `ip daddr ${b.to} `}drop`;
  });
  return [
    `table bridge ${TABLE}`,
    `delete table bridge ${TABLE}`,
    `table bridge ${TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function nft(namespace: string, args: string[], input?: string): Promise<string> {
  const binary = findBinary('nft');
  if (!binary) throw new FleetboxError('missing_prerequisite', 'nft (package nftables) is needed for network faults; run: fleetbox setup --yes');
  const result = await runCommand('ip', ['netns', 'exec', namespace, binary, ...args], { timeoutMs: 30_000, ...(input !== undefined && { input }) });
  if (result.exitCode !== 0) {
    throw new FleetboxError('io', `nft in ${namespace} failed: ${result.stderr.trim().split('\n')[0] || (result.timedOut ? 'timed out after 30 s' : `exit ${result.exitCode ?? result.signal}`)}`);
  }
  return result.stdout;
}

/**
 * Makes the bridge of `namespace` drop exactly `blocks` (and nothing else of fleetbox's), then
 * reads the rule set back: the call returns once the rules are in force, not when they were sent.
 */
export async function applyBlocks(namespace: string, blocks: readonly Block[]): Promise<void> {
  await nft(namespace, ['-f', '-'], blockRuleset(blocks));
  const listed = await nft(namespace, ['list', 'table', 'bridge', TABLE]);
  const drops = listed.split('\n').filter((line) => /\bdrop\b/.test(line)).length;
  if (drops !== blocks.length) {
    throw new FleetboxError('io', `nft in ${namespace} shows ${drops} drop rules where ${blocks.length} were written`);
  }
}
