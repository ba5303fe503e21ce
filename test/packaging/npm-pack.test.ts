import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, destroyStore, tempStore } from '../helpers.js';

const run = promisify(execFile);
const work = mkdtempSync('/tmp/fbx-pack-');
const store = tempStore();

afterAll(async () => {
  await destroyStore(store);
  rmSync(work, { recursive: true, force: true });
});

const consumerTest = `
import { expect, test } from 'vitest';
import { startCluster, FleetboxError } from 'fleetbox';
import { fleetboxTest } from 'fleetbox/vitest';

test('startCluster from the installed package', async () => {
  await using cluster = await startCluster({ name: 'pkg', members: 2, backend: 'process', unique: true });
  const r = await cluster.members[0].exec('echo hi');
  expect(r).toEqual({ stdout: 'hi\\n', stderr: '', exitCode: 0 });
  expect(new FleetboxError('usage', 'x').code).toBe('usage');
});

const it = fleetboxTest({ backend: 'process' });
it('the vitest fixture from the installed package', async ({ cluster }) => {
  expect(cluster.members[0].state).toBe('running');
});
`;

describe('npm pack', () => {
  it('installs into a fresh project where the library, the fixture and the bin work', async () => {
    const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT });
    const tarball = `${work}/${stdout.trim().split('\n').pop()}`;
    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    expect(listing).toContain('package/dist/index.d.ts');
    expect(listing).toContain('package/dist/vitest.d.ts');
    expect(listing).toContain('package/bin/fleetbox');
    expect(listing).not.toContain('package/test/');

    const project = `${work}/consumer`;
    mkdirSync(project);
    writeFileSync(`${project}/package.json`, JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, 'vitest@4'], { cwd: project });
    writeFileSync(`${project}/pkg.test.ts`, consumerTest);
    const env = { ...process.env, FLEETBOX_HOME: store.home, CI: 'true' };
    const result = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run'], { cwd: project, env });
    expect(result.stdout).toMatch(/2 passed/);
    const version = await run(`${project}/node_modules/.bin/fleetbox`, ['--version'], { env });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(readdirSync(store.clustersDir)).toEqual([]);
  }, 180_000);
});
