import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from './helpers.js';

/** The API says which of "not JSON" and "a prototype key" a refused body was, and stores nothing. */
describe('API JSON bodies', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(() => t?.close());

  const post = (body: string) => t.call('POST', '/v1/decisions', body);

  it('a body with a __proto__ or constructor.prototype key is refused as such, not as bad JSON', async () => {
    for (const body of [
      '{"target":"198.51.100.7","__proto__":{"admin":true}}',
      '{"target":"198.51.100.7","reason":"x","constructor":{"prototype":{"admin":true}}}',
      '[{"target":"198.51.100.7"},{"nested":{"__proto__":1}}]',
    ]) {
      const r = await post(body);
      expect(r.status).toBe(400);
      expect(r.json).toEqual({
        error: 'the body has a "__proto__" or "constructor.prototype" key, which is refused',
        code: 'E_HTTP',
      });
    }
    expect((await t.call('GET', '/v1/decisions/198.51.100.7')).status).toBe(404);
  });

  it('a syntax error names where it is and does not echo the body', async () => {
    const r = await post('{"target":"198.51.100.8",SECRET}');
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('E_HTTP');
    expect(r.json.error).toMatch(/^the body is not valid JSON \(at character 25\)$/);
    expect(r.text).not.toContain('SECRET');
    const empty = await post('');
    expect(empty.status).toBe(400);
  });

  it('ordinary bodies that merely mention the words still pass', async () => {
    const r = await post('{"target":"198.51.100.9","reason":"__proto__ and prototype in a reason"}');
    expect(r.status).toBe(201);
  });
});
