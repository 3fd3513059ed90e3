import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeAll } from '../../src/core/log-write.js';
import { lineLogger, silentLogger } from '../../src/core/logger.js';

/** A logger at `level` and the records it wrote, each checked to be exactly one JSON line. */
function capture(level = 'info') {
  const raw: string[] = [];
  const log = lineLogger((s) => raw.push(s), level, 'rampart-test');
  const records = () =>
    raw.map((s) => {
      expect(s.endsWith('\n')).toBe(true);
      expect(s.slice(0, -1)).not.toMatch(/[\n\r\u0000-\u001f]/);
      return JSON.parse(s) as Record<string, unknown>;
    });
  return { log, raw, records };
}

describe('the JSON logger', () => {
  it('writes the line pino wrote: level, time, name, the fields, then msg', () => {
    const { log, raw, records } = capture();
    const before = Date.now();
    log.info({ status: 'up', retry: 5, skipped: undefined }, 'bus');
    log.warn('plain');
    expect(raw[0]).toMatch(
      /^\{"level":30,"time":\d+,"name":"rampart-test","status":"up","retry":5,"msg":"bus"\}\n$/,
    );
    const [first, second] = records();
    expect(first!.time).toBeGreaterThanOrEqual(before);
    expect(second).toMatchObject({ level: 40, msg: 'plain' });
    log.info({ only: 'fields' });
    expect(records()[2]).not.toHaveProperty('msg');
  });

  it('drops what is below its level, and follows a new level at once', () => {
    const { log, records } = capture('warn');
    log.info('no');
    log.debug('no');
    log.warn('yes');
    log.error('yes');
    log.fatal('yes');
    expect(records().map((r) => r.level)).toEqual([40, 50, 60]);
    expect(log.isLevelEnabled('info')).toBe(false);
    log.level = 'trace';
    log.trace('now');
    expect(records().at(-1)).toMatchObject({ level: 10, msg: 'now' });
    expect(log.isLevelEnabled('debug')).toBe(true);
    log.level = 'silent';
    log.fatal('no');
    expect(records()).toHaveLength(4);
    expect(() => {
      log.level = 'loud';
    }).toThrow('unknown log level "loud"');
  });

  it('a silent logger writes nothing', () => {
    const log = silentLogger();
    expect(log.level).toBe('silent');
    expect(log.isLevelEnabled('fatal')).toBe(false);
    log.fatal({ a: 1 }, 'nothing');
  });

  it('a child adds its bindings to every line and keeps the level', () => {
    const { log, records } = capture('warn');
    const child = log.child({ component: 'bus', url: 'mqtt://192.0.2.1' });
    child.info('dropped');
    child.warn({ retry: 1 }, 'down');
    expect(records()).toEqual([
      expect.objectContaining({ name: 'rampart-test', component: 'bus', url: 'mqtt://192.0.2.1', retry: 1 }),
    ]);
  });

  it('writes an error with its class, message, stack, causes and own fields, under any key', () => {
    const { log, records } = capture();
    const inner = new Error('refused');
    const err = Object.assign(new TypeError('boom', { cause: inner }), { code: 'E_X' });
    log.error({ err, other: new RangeError('out') }, 'failed');
    log.error(new Error('alone'));
    const [a, b] = records();
    expect(a!.err).toMatchObject({ type: 'TypeError', message: 'boom: refused', code: 'E_X' });
    expect((a!.err as { stack: string }).stack).toMatch(
      /^TypeError: boom\n[\s\S]*\ncaused by: Error: refused/,
    );
    expect(a!.err).not.toHaveProperty('cause');
    expect(a!.other).toMatchObject({ type: 'RangeError', message: 'out' });
    expect(b).toMatchObject({ msg: 'alone', err: { type: 'Error', message: 'alone' } });
    const agg = new AggregateError([new Error('one'), new Error('two')], 'both');
    log.error({ err: agg }, 'several');
    expect(records()[2]!.err).toMatchObject({
      type: 'AggregateError',
      aggregateErrors: [{ message: 'one' }, { message: 'two' }],
    });
  });

  it('keeps control characters and newlines escaped, in the message, the fields and the keys', () => {
    const { log, raw, records } = capture();
    const hostile = 'Failed password\n{"level":60,"msg":"forged"}\r\u001b[2J\u0000\u2028\ud800';
    log.warn({ line: hostile, [hostile]: 1 }, hostile);
    expect(raw).toHaveLength(1);
    const [r] = records();
    expect(r!.line).toBe(hostile);
    expect(raw[0]).toContain('\\u001b[2J\\u0000\u2028\\ud800');
    expect(r!.msg).toBe(r!.line);
    expect(r!.level).toBe(40);
  });

  it('never throws, whatever the fields hold', () => {
    const { log, records } = capture();
    const circular: Record<string, unknown> = { x: 1 };
    circular.self = circular;
    circular.list = [circular];
    let deep: Record<string, unknown> = { end: true };
    for (let i = 0; i < 10_000; i++) deep = { deep };
    const throwing = {
      ok: 1,
      get bad() {
        throw new Error('getter');
      },
    };
    const badJson = {
      toJSON: () => {
        throw new Error('toJSON');
      },
    };
    const proxy = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error('trap');
        },
      },
    );
    const cause: Error & { cause?: unknown } = new Error('loop');
    cause.cause = cause;
    log.info(
      {
        circular,
        deep,
        throwing,
        badJson,
        proxy,
        cause,
        big: 2n ** 70n,
        nan: Number.NaN,
        fn: () => 1,
        sym: Symbol('s'),
        when: new Date(0),
        many: Array.from({ length: 1000 }, (_, i) => i),
      },
      'hostile',
    );
    log.info(Symbol('m') as unknown as string);
    log.info(null as unknown as string);
    const [r, s, n] = records();
    expect(r!.circular).toEqual({ x: 1, self: '[Circular]', list: ['[Circular]'] });
    expect(JSON.stringify(r!.deep)).toContain('"[Object]"');
    expect(r!.throwing).toEqual({ ok: 1, bad: '[unreadable]' });
    expect(r!.badJson).toBe('[unreadable]');
    expect(r!.proxy).toEqual({ '[unreadable]': true });
    expect(r!.cause).toMatchObject({ message: 'loop' });
    expect(r!.big).toBe(2 ** 70);
    expect(r!.nan).toBeNull();
    expect(r).not.toHaveProperty('fn');
    expect(r).not.toHaveProperty('sym');
    expect(r!.when).toBe('1970-01-01T00:00:00.000Z');
    expect((r!.many as unknown[]).length).toBe(101);
    expect((r!.many as unknown[])[100]).toBe('... 900 more items not written');
    expect(s!.msg).toBe('Symbol(m)');
    expect(n!.msg).toBe('null');
  });
});

describe('writing log lines to a file descriptor', () => {
  it('writes every byte of a long line, multibyte characters included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-log-'));
    try {
      const file = join(dir, 'out.log');
      const fd = openSync(file, 'w');
      const text = `${'é→'.repeat(200_000)}\n`;
      writeAll(fd, text);
      closeSync(fd);
      expect(readFileSync(file, 'utf8')).toBe(text);
      // A closed descriptor: the line is dropped, the caller is not disturbed.
      expect(() => writeAll(fd, 'lost\n')).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
