import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/detect/engine.js';
import { builtinRules } from '../../src/detect/rules-file.js';
import { decodeUtf8, LineSplitter } from '../../src/sources/line-splitter.js';
import { testRule } from '../detect/rule-spec.js';
import { family, refusedWith, textFrom, timeout } from './harness.js';

// Hostile log lines through detection: NUL bytes, invalid UTF-8, ANSI escapes, user names that
// carry `from <victim>`, 10 MB lines without a newline, user rules that backtrack catastrophically.
const f = family('detect');

const attacker = fc.integer({ min: 1, max: 254 }).map((h) => `192.0.2.${h}`);
const victim = fc.oneof(
  fc.integer({ min: 1, max: 254 }).map((h) => `198.51.100.${h}`),
  fc.integer({ min: 1, max: 0xffff }).map((h) => `2001:db8::${h.toString(16)}`),
);

/** What an attacker can put in a user name (or any field the log echoes). */
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((u) => decodeUtf8(u)),
  textFrom('\0\x1b[31m\x07\t\r\n ;:[]()', 20),
  fc.constantFrom('root', 'admin', '', ' ', 'x y'),
);
/** A user name that tries to make the rule capture the victim instead of the client. */
const injected = fc
  .tuple(
    hostile,
    victim,
    fc.constantFrom(' port 22', ' port 22 ssh2', '', ' not allowed because shell', ' [preauth]'),
  )
  .map(([h, v, tail]) => fc.constantFrom(`${h} from ${v}${tail}`, `${v}`, `${h} rhost=${v}`, `from ${v}`))
  .chain((x) => x);

const sshdLine = fc
  .tuple(
    fc.constantFrom(
      (u: string, a: string) =>
        `web1 sshd[4242]: Failed password for invalid user ${u} from ${a} port 22 ssh2`,
      (u: string, a: string) => `web1 sshd[4242]: Failed password for ${u} from ${a} port 51234 ssh2`,
      (u: string, a: string) => `web1 sshd[4242]: Invalid user ${u} from ${a} port 22`,
      (u: string, a: string) => `web1 sshd[4242]: error: PAM: Authentication failure for ${u} from ${a}`,
      (u: string, a: string) =>
        `web1 sshd[4242]: Connection closed by invalid user ${u} ${a} port 22 [preauth]`,
      (u: string, a: string) =>
        `web1 sshd[4242]: Disconnected from authenticating user ${u} ${a} port 22 [preauth]`,
      (u: string, a: string) => `web1 sshd[4242]: User ${u} from ${a} not allowed because shell /bin/false`,
      (u: string, a: string) =>
        `web1 sshd[4242]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${a}  user=${u}`,
    ),
    fc.oneof(injected, hostile),
    attacker,
    fc.constantFrom('', 'Dec  5 11:00:00 ', '2026-12-05T11:00:00.123+00:00 ', '\x1b[0m'),
  )
  .map(([line, user, a, stamp]) => ({ text: stamp + line(user, a), attacker: a }));

describe('fuzz: hostile lines through detection', () => {
  it(
    'a user name carrying "from <victim>" never gets the victim banned; only the client is',
    () => {
      const engine = new Engine(builtinRules(), { clock: 'wall', ignoreSources: true, maxTracked: 10_000 });
      f.prop(
        'victim-never-banned',
        sshdLine,
        (l) => {
          for (let i = 0; i < 6; i++) {
            for (const e of engine.feed({ text: l.text, source: '/var/log/auth.log' })) {
              if (e.type === 'ban') expect(e.target.text, l.text).toBe(l.attacker);
            }
          }
        },
        { runs: 30_000 },
      );
    },
    timeout(20),
  );

  it(
    'any line (NUL, invalid UTF-8, escapes, binary) is classified without a throw, in bounded time',
    () => {
      const engine = new Engine(builtinRules({ aggressive: true }), { clock: 'log', ignoreSources: true });
      const line = fc.oneof(
        sshdLine.map((l) => l.text),
        fc.uint8Array({ maxLength: 300 }).map((u) => decodeUtf8(u)),
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc
          .tuple(hostile, fc.integer({ min: 1, max: 16_000 }))
          .map(([h, n]) => `sshd: ${h.repeat(Math.ceil(n / (h.length || 1)))}`),
      );
      f.prop(
        'hostile-lines',
        line,
        (text) => {
          for (const e of engine.feed({ text, source: 'x' })) {
            expect(e.target.family === 4 || e.target.family === 6).toBe(true);
            expect(Number.isFinite(e.at)).toBe(true);
          }
        },
        { runs: 60_000, boundMs: 250 },
      );
    },
    timeout(25),
  );

  it(
    'a user rule that backtracks catastrophically completes in bounded time on long lines',
    () => {
      const evil = fc.constantFrom(
        '^(a+)+$ <HOST>',
        '^(\\w+\\s?)*$ from <HOST>',
        '(a|a)*b <HOST>',
        '^(a|aa)+$<HOST>',
        '(.*a){12}<HOST>',
        '^(\\d+)*x from <HOST>$',
      );
      const rules = fc.array(evil, { minLength: 1, maxLength: 3 });
      const long = fc
        .tuple(fc.constantFrom('a', 'ab', '1', 'a ', 'aaaaaaaaa!'), fc.integer({ min: 1_000, max: 16_000 }))
        .map(([s, n]) => `${s.repeat(Math.ceil(n / s.length)).slice(0, n)} from 192.0.2.1`);
      f.prop(
        'backtracking',
        fc.tuple(rules, long),
        ([patterns, line]) => {
          const spec = testRule(patterns, { name: 'evil', maxretry: 1 });
          const engine = refusedWith(['E_REGEX'], () => new Engine([spec], { clock: 'log' }));
          if (!engine) return;
          const t0 = performance.now();
          engine.feed({ text: line, source: 'x' });
          // Exponential patterns finish in milliseconds: the linear engine takes over past V8's
          // backtrack budget (detect/regex-safety.ts). Polynomial ones do not trip that budget
          // (`(.*a){12}` on a 16 KiB line without an `a` takes about 1 s): the engine's rule time
          // budget stops them at 50 ms (ADR 0026). The bound is loose on purpose (shared machine).
          expect(performance.now() - t0).toBeLessThan(2000 * patterns.length);
        },
        { runs: 100, boundMs: 8000 },
      );
    },
    timeout(30),
  );

  it(
    'a 10 MB line with no newline is cut at the cap and never held whole; memory stays bounded',
    () => {
      const engine = new Engine(builtinRules(), { clock: 'log', ignoreSources: true });
      const chunk = fc.tuple(
        fc.constantFrom('a', '\0', '\x1b[1m', '\xff', 'from 198.51.100.1 '),
        fc.integer({ min: 1, max: 65_536 }),
      );
      f.prop(
        'ten-megabyte-line',
        chunk,
        ([unit, size]) => {
          const piece = Buffer.from(unit.repeat(Math.ceil(size / unit.length)), 'latin1');
          const sp = new LineSplitter();
          const rss0 = process.memoryUsage.rss();
          let lines = 0;
          for (let sent = 0; sent < 10 * 1024 * 1024; sent += piece.length) {
            sp.push(piece, (text, truncated) => {
              lines++;
              expect(truncated).toBe(true);
              expect(engine.feed({ text, source: 'x' })).toEqual([]);
            });
          }
          sp.flush(() => {
            throw new Error('a cut line must not come out again at the end');
          });
          expect(lines).toBe(1);
          // The splitter keeps at most its 1 MiB cap; allow GC slack around it.
          expect(process.memoryUsage.rss() - rss0).toBeLessThan(96 * 1024 * 1024);
        },
        { runs: 25, boundMs: 5000 },
      );
    },
    timeout(30),
  );

  it(
    'random rules on random lines: refused at start or running without a throw',
    () => {
      const bits = [
        '<HOST>',
        '(?<ip>\\S+)',
        '.*',
        '\\d+',
        'from ',
        '(',
        ')',
        '|',
        '[a-z]+',
        '\\s',
        '^',
        '$',
        '+',
        '*',
        '?',
      ];
      const pattern = fc.array(fc.constantFrom(...bits), { maxLength: 7 }).map((a) => a.join(''));
      f.prop(
        'random-rules',
        fc.tuple(
          fc.array(pattern, { minLength: 1, maxLength: 3 }),
          fc.array(fc.string({ unit: 'binary', maxLength: 80 }), { maxLength: 5 }),
        ),
        ([patterns, lines]) => {
          const spec = testRule(patterns, { name: 'r', maxretry: 1 });
          const engine = refusedWith(['E_REGEX', 'E_CONFIG'], () => new Engine([spec], { clock: 'log' }));
          for (const text of lines) engine?.feed({ text: `${text} from 192.0.2.9`, source: 'x' });
        },
        { runs: 12_000 },
      );
    },
    timeout(20),
  );
});
