// The README's "Use it from tests" example, runnable as it is: npx vitest run examples
import { expect, test } from 'vitest';
import { startCluster } from 'fleetbox';
import { fleetboxTest } from 'fleetbox/vitest';

test('raft survives losing a node', async () => {
  await using cluster = await startCluster({ name: 'raft', members: 3, cpus: 1, memoryMiB: 256, unique: true });
  const [a, b, c] = cluster.members;
  await a!.exec('my-server --peers ' + cluster.members.map((m) => m.ip).join(','));
  await b!.stop(); // graceful power-off
  await cluster.add(b!.name); // re-join the live network (addmember)
  const r = await c!.exec('uptime'); // { stdout, stderr, exitCode }
  expect(r.exitCode).toBe(0);
  expect(b!.state).toBe('running');
}); // disposal stops and deletes everything

const it = fleetboxTest({ members: 2 }); // one cluster per test, torn down after it,
it('talks', async ({ cluster }) => { //     named after the test plus a unique suffix
  const [a, b] = cluster.members;
  expect((await a!.exec(`ping -c1 -W2 ${b!.name}`)).exitCode).toBe(0);
});
