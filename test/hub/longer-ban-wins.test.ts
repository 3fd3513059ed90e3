import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseImport } from '../../src/cli/commands/import.js';
import { seal } from '../../src/trust/envelope.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from './helpers.js';

const MAIN = resolve('dist/cli/main.js');
const req = requirements('longer ban wins (CLI)', [`file:${MAIN}`]);

/** One rule on every path: a ban never silently shortens a longer ban in force. */
describe('a ban never silently shortens a longer one', () => {
  let t: TestHub;
  let dir: string;
  beforeAll(async () => {
    t = await startTestHub();
    dir = mkdtempSync(join(tmpdir(), 'rampart-longer-'));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const expiry = async (target: string) => {
    const r = await t.call('GET', `/v1/bans?target=${encodeURIComponent(target)}`);
    return (r.json.items as Array<{ target: string; expiresAt: number | null }>).find(
      (b) => b.target === target,
    )?.expiresAt;
  };
  // Asynchronous: the hub answering it runs in this process.
  const cli = (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((done) => {
      const argv = [MAIN, ...args, '--hub', t.hub.url, '--token', t.hub.adminToken];
      const child = execFile(process.execPath, argv, { timeout: 20_000 }, (_err, out, err) =>
        done({ code: child.exitCode, out, err }),
      );
    });

  it('API: a shorter or default-length ban keeps the 12 h one and says so; replace shortens it', async () => {
    const first = await t.call('POST', '/v1/decisions', { target: '198.51.100.30', duration: '12h' });
    expect(first.status).toBe(201);
    expect(first.json.result).toBe('ban');
    const long = await expiry('198.51.100.30');
    for (const body of [{ duration: '10m' }, {}]) {
      const r = await t.call('POST', '/v1/decisions', { target: '198.51.100.30', ...body });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ result: 'kept', seq: first.json.seq, expiresAt: long });
    }
    expect(await expiry('198.51.100.30')).toBe(long);
    const longer = await t.call('POST', '/v1/decisions', { target: '198.51.100.30', duration: '1d' });
    expect(longer.status).toBe(201);
    const replaced = await t.call('POST', '/v1/decisions', {
      target: '198.51.100.30',
      duration: '10m',
      replace: true,
    });
    expect(replaced.status).toBe(201);
    expect(await expiry('198.51.100.30')).toBeLessThan(long!);
    expect((await t.call('POST', '/v1/decisions', { target: '198.51.100.30', replace: 'yes' })).status).toBe(
      400,
    );
  });

  it('bulk and import: longer kept unless replace; a bulk whose every item fails is 422 with a bounded body', async () => {
    await t.call('POST', '/v1/decisions', { target: '198.51.100.31', duration: 'permanent' });
    const kept = await t.call('POST', '/v1/decisions/bulk', {
      decisions: [{ target: '198.51.100.31', duration: '1h' }],
    });
    expect(kept.status).toBe(200);
    expect(kept.json).toMatchObject({ added: 0, duplicates: 1 });
    expect(await expiry('198.51.100.31')).toBeNull();
    const replaced = await t.call('POST', '/v1/decisions/bulk', {
      replace: true,
      decisions: [{ target: '198.51.100.31', duration: '1h' }],
    });
    expect(replaced.json).toMatchObject({ added: 1, duplicates: 0 });
    expect(await expiry('198.51.100.31')).not.toBeNull();

    const head = (await t.call('GET', '/v1/health')).json.head;
    const bad = await t.call('POST', '/v1/decisions/bulk', {
      decisions: Array.from({ length: 5_000 }, (_, i) => ({ target: `not-an-address-${i}` })),
    });
    expect(bad.status).toBe(422);
    expect(bad.json.errorCount).toBe(5_000);
    expect(bad.json.errors.length).toBe(1_000);
    expect(bad.text.length).toBeLessThan(200_000);
    expect((await t.call('GET', '/v1/health')).json.head).toBe(head);
  });

  it('reports: a node reporting an address banned longer by hand does not shorten it', async () => {
    const node = await t.enrol('web-longer');
    await t.call('POST', '/v1/decisions', { target: '198.51.100.32', duration: '1w' });
    const long = await expiry('198.51.100.32');
    const env = seal(
      'report',
      { target: '198.51.100.32', rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now() },
      'web-longer',
      node.keys.privateKey,
    );
    const r = await t.call('POST', '/v1/reports', env.toString(), node.token);
    expect(r.status).toBeLessThan(300);
    expect(await expiry('198.51.100.32')).toBe(long);
  });

  it('import: a word in the duration column is an error naming the line; "-" and quotes carry a reason', () => {
    const parsed = parseImport(
      [
        '192.0.2.16 permanently',
        '192.0.2.17 12h web scanner',
        '192.0.2.18 - web scanner',
        '192.0.2.19 "web scanner"',
        "192.0.2.20 'unclosed",
        '192.0.2.21',
      ].join('\n'),
      'lines',
    );
    expect(parsed.errors).toEqual([
      { line: 1, error: expect.stringMatching(/"permanently" is not a duration.*"-" for no duration/) },
      { line: 5, error: 'the reason opens a quote it never closes' },
    ]);
    expect(parsed.items).toEqual([
      { line: 2, target: '192.0.2.17', duration: 43_200, reason: 'web scanner' },
      { line: 3, target: '192.0.2.18', reason: 'web scanner' },
      { line: 4, target: '192.0.2.19', reason: 'web scanner' },
      { line: 6, target: '192.0.2.21' },
    ]);
  });

  it.skipIf(req.skip)(
    'CLI: ban says "kept" and --replace shortens; import names file:line and exits 2',
    async () => {
      const first = await cli(['ban', '198.51.100.33', '--for', '12h']);
      expect(first.code, first.err).toBe(0);
      const kept = await cli(['ban', '198.51.100.33', '--for', '10m']);
      expect(kept.code).toBe(0);
      expect(kept.out).toMatch(
        /^kept: 198\.51\.100\.33 is already banned until .* pass --replace to shorten it/,
      );
      const replaced = await cli(['ban', '198.51.100.33', '--for', '10m', '--replace']);
      expect(replaced.out).toMatch(/^banned 198\.51\.100\.33 for 10m/);
      const file = join(dir, 'bans.txt');
      writeFileSync(file, '198.51.100.34 permanently\n198.51.100.35 1h ok\n');
      const imp = await cli(['import', file]);
      expect(imp.code).toBe(2);
      expect(imp.err).toContain(`${file}:1: "permanently" is not a duration`);
      expect(imp.out).toMatch(/imported 1 ban/);
      writeFileSync(file, 'nonsense-1\nnonsense-2\n');
      const all = await cli(['import', file]);
      expect(all.code).toBe(2);
      expect(all.err).toContain(`${file}:1:`);
      const help = await cli(['import', '--help']);
      expect(help.out).toMatch(/A reason without a duration is quoted or follows "-"/);
    },
  );
});
