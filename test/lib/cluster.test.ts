import { afterEach, describe, expect, it } from 'vitest';
import { attach, startCluster, type Cluster } from '../../dist/index.js';
import { Store } from '../../dist/store/layout.js';
import { isProcessAlive } from '../../dist/host/proc.js';
import { alive, destroyStore, eventually, processesOf, tempStore } from '../helpers.js';

let store: Store;
afterEach(async () => {
  await destroyStore(store);
});

describe('startCluster (process backend)', () => {
  it('boots members, runs commands on them, stops and re-joins one, and disposes everything', async () => {
    store = tempStore();
    let holderPids: number[] = [];
    {
      await using cluster = await startCluster({ name: 'raft', members: 3, backend: 'process', home: store.home });
      expect(cluster.members.map((m) => m.name)).toEqual(['raft-1', 'raft-2', 'raft-3']);
      const [a, b, c] = cluster.members as [Cluster['members'][0], Cluster['members'][0], Cluster['members'][0]];
      expect(new Set(cluster.members.map((m) => m.ip)).size).toBe(3);
      const r = await a.exec('echo "$FLEETBOX_NAME at $FLEETBOX_IP"; exit 4');
      expect(r).toEqual({ stdout: `raft-1 at ${a.ip}\n`, stderr: '', exitCode: 4 });
      const ipOfB = b.ip;
      await b.stop();
      expect(b.state).toBe('stopped');
      await expect(b.exec('true')).rejects.toMatchObject({ code: 'not_running' });
      const back = await cluster.add('raft-2');
      expect(back).toBe(b);
      expect(b.state).toBe('running');
      expect(b.ip).toBe(ipOfB);
      expect((await c.exec('uptime')).exitCode).toBe(0);
      holderPids = processesOf(store);
      expect(holderPids.length).toBeGreaterThan(0);
    }
    // disposal stopped and deleted everything
    expect(await eventually(() => alive(holderPids).length === 0)).toBe(true);
    expect(new Store(store.home).ensure() && (await attach('raft', { home: store.home }).catch((e: Error) => e))).toMatchObject({
      code: 'not_found',
    });
  });

  it('exec with a timeout rejects with exec_timeout and leaves the member intact', async () => {
    store = tempStore();
    const cluster = await startCluster({ name: 'slowpoke', backend: 'process', home: store.home });
    const [member] = cluster.members;
    await expect(member?.exec('sleep 30', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'exec_timeout' });
    expect((await member?.exec('echo ok'))?.stdout).toBe('ok\n');
    await cluster.destroy();
  });

  it('disposing twice, or after the holder died, is no error and leaves nothing', async () => {
    store = tempStore();
    const cluster = await startCluster({ name: 'twice', members: 2, backend: 'process', home: store.home });
    const pids = processesOf(store);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    expect(await eventually(() => processesOf(store).length === 0)).toBe(true);
    await cluster.destroy();
    await cluster.destroy();
    await cluster[Symbol.asyncDispose]();
    expect(pids.filter(isProcessAlive)).toEqual([]);
  });

  it('two clusters with the same base name started at once both succeed, distinct', async () => {
    store = tempStore();
    const [one, two] = await Promise.all([
      startCluster({ name: 'same', unique: true, backend: 'process', home: store.home }),
      startCluster({ name: 'same', unique: true, backend: 'process', home: store.home }),
    ]);
    expect(one.name).not.toBe(two.name);
    expect(one.name).toMatch(/^same-x[0-9a-f]{6}$/);
    await Promise.all([one.destroy(), two.destroy()]);
  });

  it('bad input fails clearly before anything starts', async () => {
    store = tempStore();
    await expect(startCluster({ name: 'Bad Name', backend: 'process', home: store.home })).rejects.toMatchObject({ code: 'invalid_name' });
    await expect(startCluster({ name: 'web-3', backend: 'process', home: store.home })).rejects.toMatchObject({ code: 'usage' });
    await expect(startCluster({ name: 'ok', members: 0, backend: 'process', home: store.home })).rejects.toMatchObject({ code: 'usage' });
    const cluster = await startCluster({ name: 'ok', backend: 'process', home: store.home });
    await expect(cluster.add('other-1')).rejects.toMatchObject({ code: 'usage' });
    expect(() => cluster.member('ok-9')).toThrow(/has no member ok-9/);
    await cluster.destroy();
  });
});
