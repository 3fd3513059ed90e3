import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBanbanConfig } from '../../src/compat/banban-config.js';
import { assertSetName, isSetName } from '../../src/core/set-name.js';
import { loadRulesFile } from '../../src/detect/rules-file.js';
import { createFirewall } from '../../src/firewall/create.js';
import { seal } from '../../src/trust/envelope.js';
import { startTestHub, type TestHub } from './helpers.js';

// The hub as agents elsewhere see it: a documentation address, so a ban covering it is refused.
const HUB_ADDR = '203.0.113.5';

describe('entry guards: set names and protected addresses at every hub entry', () => {
  let t: TestHub;
  let node: { keys: { privateKey: import('node:crypto').KeyObject }; token: string };
  beforeAll(async () => {
    t = await startTestHub({ publicUrl: `http://${HUB_ADDR}:9999` });
    node = await t.enrol('guard-node');
  });
  afterAll(async () => {
    await t?.close();
  });
  const head = async () => (await t.call('GET', '/v1/status')).json.head as number;
  const report = (body: Record<string, unknown>) =>
    t.call(
      'POST',
      '/v1/reports',
      seal(
        'report',
        { rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now(), ...body },
        'guard-node',
        node.keys.privateKey,
      ).toString(),
      node.token,
    );

  it('the one set-name rule matches what nft and ipset accept', () => {
    for (const ok of ['blocklist', 'blacklist', 'web-1_x', '_x', 'a'.repeat(24)])
      expect(isSetName(ok)).toBe(true);
    // nft refuses a leading digit or dash; ipset names end up 31 bytes at most with a 7-byte suffix.
    for (const bad of ['1x', '-x', '', 'a b', 'é', 'a'.repeat(25), 'x;y', 'x/y'])
      expect(isSetName(bad)).toBe(false);
    // Right after a good name (the one remembered), look-alikes are still refused.
    for (const bad of ['blocklist\n', ' blocklist', ['blocklist'], new String('blocklist')]) {
      expect(isSetName('blocklist')).toBe(true);
      expect(isSetName(bad)).toBe(false);
    }
    expect(() => assertSetName('1x', 'rule set')).toThrow(expect.objectContaining({ code: 'E_SET_NAME' }));
  });

  it('POST /v1/decisions with set 1x is 400 E_SET_NAME and appends nothing', async () => {
    const before = await head();
    const r = await t.call('POST', '/v1/decisions', { target: '192.0.2.31', set: '1x' });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('E_SET_NAME');
    expect(r.json.error).toMatch(/1x/);
    expect(await head()).toBe(before);
    expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.31', set: 'web-1' })).status).toBe(201);
    expect((await t.call('DELETE', '/v1/decisions/192.0.2.31?set=1x')).json.code).toBe('E_SET_NAME');
  });

  it('bulk (and so import) refuses the bad item by index with E_SET_NAME, the rest apply', async () => {
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: [{ target: '192.0.2.32', set: '1x' }, { target: '192.0.2.33' }],
    });
    expect(r.json.added).toBe(1);
    expect(r.json.errors).toEqual([expect.objectContaining({ index: 0, code: 'E_SET_NAME' })]);
  });

  it("a node's report with set 1x is refused as invalid and appends nothing", async () => {
    const before = await head();
    const r = await report({ target: '192.0.2.34', set: '1x' });
    expect(r.json).toMatchObject({ result: 'refused', refusal: 'invalid' });
    expect(await head()).toBe(before);
  });

  it('a ban covering the hub (address, ::ffff: form, a range around it) is refused on every path, force or not', async () => {
    const before = await head();
    for (const target of [HUB_ADDR, `::ffff:${HUB_ADDR}`, '203.0.113.0/24']) {
      for (const force of [false, true]) {
        const r = await t.call('POST', '/v1/decisions', { target, force });
        expect(r.status, target).toBe(422);
        expect(r.json.code).toBe('E_PROTECTED');
      }
      const bulk = await t.call('POST', '/v1/decisions/bulk', { decisions: [{ target, force: true }] });
      expect(bulk.json.errors[0].code).toBe('E_PROTECTED');
      expect((await report({ target })).json).toMatchObject({ result: 'refused', refusal: 'protected' });
    }
    expect(await head()).toBe(before);
  });

  it('allowlisting 0.0.0.0/0 or ::/0 needs force', async () => {
    for (const cidr of ['0.0.0.0/0', '::/0']) {
      const r = await t.call('POST', '/v1/allowlist', { cidr });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/force/);
    }
    expect((await t.call('GET', '/v1/allowlist')).json.entries).toEqual([]);
    expect((await t.call('POST', '/v1/allowlist', { cidr: '::/0', force: true })).status).toBe(201);
    expect((await t.call('DELETE', '/v1/allowlist', { cidr: '::/0' })).status).toBe(200);
  });

  it('config: a rule file, a compat rule and the firewall config refuse set 1x with the place named', () => {
    const file = join(t.dataDir, 'bad-rules.yaml');
    writeFileSync(file, 'rules:\n  - name: r\n    patterns: ["fail from <HOST>"]\n    set: "1x"\n');
    expect(() => loadRulesFile(file)).toThrow(/bad-rules\.yaml.*set/s);
    const banban = (target: string) => () =>
      parseBanbanConfig(
        `blocktypes:\n  ssh:\n    patterns: ['fail from (?<ip>\\S+)']\n    minocc: 3\n    interval: 60\n    target: '${target}'\n`,
        'banban.yaml',
      );
    // xt_recent would take `web.1`; nftables and ipset sets would not, so the file is refused.
    for (const target of ['1x', 'web.1']) {
      expect(banban(target)).toThrow(/banban\.yaml:6: blocktypes\.ssh\.target: target must be a set name/);
    }
    expect(banban('web_1')().rules[0]!.set).toBe('web_1');
    expect(() => createFirewall({ backend: 'dry-run', nftables: { sets: { '1x': {} } } } as never)).toThrow(
      /firewall\.nftables\.sets\.1x/,
    );
  });
});
