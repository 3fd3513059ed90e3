import { describe, expect, it } from 'vitest';
import { blocklistWriter, routerOsDuration, routerOsString } from '../../src/hub/blocklist/formats.js';

describe('blocklist writers', () => {
  it('RouterOS strings escape quotes, backslashes, $ and ? and write control bytes as \\XX', () => {
    expect(routerOsString('rampart')).toBe('"rampart"');
    expect(routerOsString('a"b\\c$d?e')).toBe('"a\\"b\\\\c\\$d\\?e"');
    expect(routerOsString('x\ny\u007f')).toBe('"x\\0Ay\\7F"');
  });

  it('RouterOS timeouts are w/d/h/m/s, at least 1s, and capped at the longest RouterOS keeps', () => {
    expect(routerOsDuration(3600)).toBe('1h');
    expect(routerOsDuration(90061.2)).toBe('1d1h1m2s');
    expect(routerOsDuration(0)).toBe('1s');
    const now = 1_700_000_000_000;
    const w = blocklistWriter('mikrotik', { head: 1, now, list: 'r' });
    const tenYears = w.entry({ target: '192.0.2.1', family: 4, expiresAt: now + 10 * 365 * 86_400_000 });
    expect(tenYears).toBe(
      '/ip firewall address-list add list="r" address=192.0.2.1 timeout=35w3d13h13m56s\n',
    );
    expect(w.entry({ target: '2001:db8::/48', family: 6, expiresAt: null })).toBe(
      '/ipv6 firewall address-list add list="r" address=2001:db8::/48\n',
    );
  });

  it('JSON is one valid document whether empty or not', () => {
    for (const n of [0, 1, 3]) {
      const w = blocklistWriter('json', { head: 7, now: 0, list: 'r' });
      let text = w.head();
      for (let i = 0; i < n; i++) text += w.entry({ target: `192.0.2.${i}`, family: 4, expiresAt: null });
      text += w.tail();
      expect(JSON.parse(text)).toMatchObject({ head: 7, items: expect.any(Array) });
      expect(JSON.parse(text).items).toHaveLength(n);
    }
  });
});
