import { describe, expect, it } from 'vitest';
import { batchView } from '../../src/store/batch-view.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { ban } from './contract.js';

describe('batch view', () => {
  it('answers the pairs read up front without waiting, and says which it did not read', async () => {
    const store = new SqliteStore(':memory:');
    const T = 1_700_000_000_000;
    await store.append([ban('192.0.2.1', T)], [{ target: '192.0.2.1', at: T }]);
    const view = await batchView(
      store,
      [
        { target: '192.0.2.1', set: 'blocklist' },
        { target: '192.0.2.2', set: 'blocklist' },
      ],
      T + 1,
    );
    expect(view.known('192.0.2.1', 'blocklist')?.target).toBe('192.0.2.1');
    // Read, and no ban in force: null, not "ask again".
    expect(view.known('192.0.2.2', 'blocklist')).toBeNull();
    // Not read up front: undefined, and activeFor still reads it.
    expect(view.known('192.0.2.1', 'web')).toBeUndefined();
    expect(await view.activeFor('192.0.2.1', 'web')).toBeUndefined();
    expect((await view.activeFor('192.0.2.1', 'blocklist'))?.seq).toBe(1);
    expect(await view.banCount('192.0.2.1')).toBe(1);
    // Counts left out of the read up front (a bulk import's view) are still right when asked.
    const bare = await batchView(store, [{ target: '192.0.2.1', set: 'blocklist' }], T + 1, {
      history: false,
    });
    expect(bare.known('192.0.2.1', 'blocklist')?.seq).toBe(1);
    expect(await bare.banCount('192.0.2.1')).toBe(1);
    expect(await bare.banCount('192.0.2.2')).toBe(0);
    await store.close();
  });
});
