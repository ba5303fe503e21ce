import { describe, expect, it } from 'vitest';
import { loadBackend, loadBackendSetup } from '../../dist/backend/index.js';
import { BACKENDS } from '../../dist/store/backend-kinds.js';
import { cannotBoot } from '../../dist/vitest.js';
import { Store } from '../../dist/store/layout.js';
import { scratch } from '../scratch.js';

describe('the backend registry', () => {
  it('every registered kind loads a backend of that kind and a setup hook, by its folder name', async () => {
    const store = new Store(scratch()).ensure();
    for (const kind of BACKENDS) {
      expect((await loadBackend(kind)).kind).toBe(kind);
      const setup = await loadBackendSetup(kind);
      expect(typeof setup.cannotRun).toBe('function');
      for (const line of await setup.check(store)) expect(line).toMatchObject({ name: expect.any(String), ok: expect.any(Boolean), detail: expect.any(String) });
    }
  });

  it('an unknown kind is a usage error naming the known ones, and never a path to import', async () => {
    await expect(loadBackend('../../holder/main')).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining(BACKENDS.join(', ')) });
    await expect(loadBackendSetup('nope')).rejects.toMatchObject({ code: 'usage' });
  });

  it('plain processes run anywhere (the fixture never skips them)', async () => {
    expect(await cannotBoot('process')).toBeUndefined();
  });
});
