import { scratch } from '../scratch.js';
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_SOCKET_PATH, Store } from '../../dist/store/layout.js';
import { isFleetboxError } from '../../dist/protocol/errors.js';

describe('Store', () => {
  it('creates its home 0700 with the design layout', () => {
    const store = new Store(scratch() + '/home').ensure();
    expect(statSync(store.home).mode & 0o777).toBe(0o700);
    for (const dir of [store.clustersDir, store.runDir, store.imagesDir, store.logsDir]) {
      expect(statSync(dir).isDirectory()).toBe(true);
    }
    expect(store.configPath('web', 'web-1')).toBe(`${store.home}/clusters/web/web-1/config.json`);
    expect(store.memberSocketPath('web-1')).toMatch(/\/run\/[0-9a-f]{16}\.sock$/);
    expect(store.controlSocketPath('web')).toMatch(/\/run\/[0-9a-f]{16}\.ctl$/);
  });

  it('refuses a socket path over the unix limit with a clear error', () => {
    const store = new Store('/tmp/' + 'x'.repeat(90));
    let caught: unknown;
    try {
      store.memberSocketPath('web-1');
    } catch (error) {
      caught = error;
    }
    expect(isFleetboxError(caught, 'path_too_long')).toBe(true);
    expect((caught as Error).message).toContain(`${MAX_SOCKET_PATH}-byte`);
    expect((caught as Error).message).toContain('FLEETBOX_HOME');
  });

  it('never builds a path from an invalid name', () => {
    const store = new Store('/tmp/fbx-never');
    expect(() => store.memberDir('web', '../etc')).toThrow(/invalid member name/);
    expect(() => store.clusterDir('..')).toThrow(/invalid cluster name/);
  });
});
