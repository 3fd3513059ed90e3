import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseBanbanConfig } from '../../src/compat/banban-config.js';
import { Fail2banConfig, parseFail2banIni } from '../../src/compat/fail2ban-ini.js';
import { loadFail2banJails } from '../../src/compat/fail2ban-jail.js';
import { parseSyslogBlacklistConf } from '../../src/compat/syslog-blacklist-conf.js';
import { rampartConfigSchema } from '../../src/config/schema.js';
import { parseYamlText } from '../../src/core/config-file.js';
import { Engine } from '../../src/detect/engine.js';
import type { RuleSpec } from '../../src/detect/rule.js';
import { parseRulesText } from '../../src/detect/rules-file.js';
import { docAddress, family, mutated, refusedWith, textFrom, timeout } from './harness.js';

// Operator files: rampart.yaml, native rule files, fail2ban INI (with interpolation), banban YAML,
// syslog-blacklist.conf. A broken file is one E_CONFIG naming file and line; never a crash, a
// hang, or a rule that loads but cannot run.
const f = family('config-files');
// Small documents: the yaml package costs milliseconds per kilobyte, and the bugs live in shapes.
fc.configureGlobal({ baseSize: 'xsmall' });

const regexBits = [
  '<HOST>',
  '<ADDR>',
  '{IP_NUMBER}',
  '(?<ip>\\S+)',
  '(a+)+',
  '(',
  ')',
  '[',
  ']',
  '\\1',
  '(?=x)',
  '.*',
  '^',
  '$',
  'Failed password for ',
  ' from ',
  '\\d+',
  '|',
  '?',
  '{2,}',
  '\\',
  '%(x)s',
];
const regex = fc.array(fc.constantFrom(...regexBits), { maxLength: 6 }).map((a) => a.join(''));
const duration = fc.oneof(
  fc.constantFrom('10m', '1h', 'permanent', '-1', '0', '1x', '', '1e9', '99999999999999999999'),
  fc.double(),
  fc.integer(),
);
const scalar = fc.oneof(fc.jsonValue({ maxDepth: 0 }), duration, regex, docAddress);

/** Turns a value into YAML text, sometimes mangled, sometimes raw hostile text. */
function yamlText(v: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: v.map((x) => stringify(x)) },
    { weight: 2, arbitrary: mutated(v.map((x) => Buffer.from(stringify(x)))).map((b) => b.toString('utf8')) },
    { weight: 1, arbitrary: textFrom('a: -[]{}&*!|>\'"\n #%@`\t?,', 80) },
    // Alias expansion: a few lines that would unfold into millions of nodes.
    {
      weight: 1,
      arbitrary: fc.integer({ min: 2, max: 12 }).map((n) => {
        const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
        for (let i = 1; i < n; i++)
          lines.push(
            `a${i}: &a${i} [${Array(10)
              .fill(`*a${i - 1}`)
              .join(', ')}]`,
          );
        return `${lines.join('\n')}\nrules: *a${n - 1}\n`;
      }),
    },
  );
}

const ruleEntry = fc.record(
  {
    name: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), fc.string({ maxLength: 5 })),
    sources: fc.array(
      fc.oneof(fc.constantFrom('/var/log/auth.log', 'journald', '*'), fc.string({ maxLength: 5 })),
    ),
    patterns: fc.array(regex, { maxLength: 3 }),
    ignore: fc.array(regex, { maxLength: 2 }),
    good: fc.array(regex, { maxLength: 2 }),
    prefregex: regex,
    prefilter: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
    maxretry: fc.oneof(fc.integer({ min: -2, max: 12_000 }), scalar),
    findtime: duration,
    bantime: duration,
    escalation: fc.record({ multiplier: fc.oneof(fc.double(), scalar), max: duration }, { requiredKeys: [] }),
    widen6: fc.oneof(fc.integer({ min: 0, max: 200 }), scalar),
    ignoreNets: fc.array(fc.oneof(docAddress, fc.string({ maxLength: 10 })), { maxLength: 2 }),
    set: fc.oneof(fc.constantFrom('blocklist', 'web', 'a b', ''), fc.string({ maxLength: 40 })),
    aggressive: fc.boolean(),
    extra: scalar,
  },
  { requiredKeys: [] },
);

/**
 * Loaders check a file's shape; the engine compiles its rules when it starts, where an unsafe
 * pattern (a back-reference) is E_REGEX and a set name no firewall takes (banban's `target: web.1`)
 * E_SET_NAME, both naming the file and key. Either is a clear refusal, only a later one.
 */
function runnable(specs: RuleSpec[]): Engine | undefined {
  return refusedWith(
    ['E_REGEX', 'E_CONFIG', 'E_SET_NAME'],
    () => new Engine(specs, { clock: 'log', ignoreSources: true }),
  );
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('fuzz: operator files', () => {
  it(
    'rampart.yaml: any text loads or is one E_CONFIG with a line',
    () => {
      const config = fc.dictionary(
        fc.constantFrom(
          'fleet',
          'data',
          'agent',
          'rules',
          'sources',
          'firewall',
          'bus',
          'hub',
          'vallumd',
          'allowlist',
          'x',
        ),
        fc.oneof(scalar, fc.jsonValue({ maxDepth: 2 }), fc.array(docAddress)),
      );
      f.prop(
        'rampart-yaml',
        yamlText(config),
        (text) => {
          refusedWith(['E_CONFIG'], () =>
            parseYamlText(text, rampartConfigSchema, '/etc/rampart/rampart.yaml'),
          );
        },
        { runs: 6_000 },
      );
    },
    timeout(15),
  );

  it(
    'native rule files: a file loads or is E_CONFIG; a file that loads runs in the engine',
    () => {
      const file = fc.oneof(
        fc.record({ rules: fc.array(ruleEntry, { minLength: 1, maxLength: 3 }) }),
        fc.jsonValue({ maxDepth: 2 }),
      );
      f.prop(
        'rules-file',
        yamlText(file),
        (text) => {
          const specs = refusedWith(['E_CONFIG'], () => parseRulesText(text, 'rules.yaml'));
          if (!specs) return;
          const engine = runnable(specs);
          engine?.feed({ text: 'Failed password for root from 192.0.2.7 port 22', source: 'x' });
        },
        { runs: 4_000 },
      );
    },
    timeout(15),
  );

  it(
    'fail2ban INI: any text parses or is E_CONFIG; every option interpolates or is E_CONFIG, in bounded time',
    () => {
      const names = ['a', 'b', 'c', 'known/a', 'default/b', 'Definition/c', '__name__', 'x/y'];
      const value = fc
        .array(
          fc.oneof(
            fc.constantFrom(...names).map((n) => `%(${n})s`),
            fc.constantFrom('%%', '%', 'text', ' ; comment', '#', '\n  more', '%(', ')s'),
          ),
          { maxLength: 6 },
        )
        .map((a) => a.join(''));
      const section = fc.tuple(
        fc.constantFrom('DEFAULT', 'Definition', 'Init', 'sshd', 'INCLUDES', '', ' x '),
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'A', 'failregex', ''), value), { maxLength: 4 }),
      );
      const ini = fc.oneof(
        fc
          .array(section, { maxLength: 4 })
          .map((secs) =>
            secs.map(([n, kv]) => `[${n}]\n${kv.map(([k, v]) => `${k} = ${v}`).join('\n')}`).join('\n'),
          ),
        textFrom('[]=:%()s \n\t#;abcDEFAULT', 100),
      );
      f.prop(
        'fail2ban-ini',
        fc.tuple(fc.array(ini, { minLength: 1, maxLength: 2 }), fc.boolean()),
        ([texts, inline]) => {
          const parsed = refusedWith(['E_CONFIG'], () =>
            texts.map((t, i) => parseFail2banIni(t, `jail.${i}.conf`, { inlineComments: inline })),
          );
          if (!parsed) return;
          const cfg = new Fail2banConfig(parsed);
          for (const s of [...cfg.sections(), 'DEFAULT']) {
            for (const k of cfg.keys(s)) {
              const v = refusedWith(['E_CONFIG'], () => cfg.get(s, k, { c: '%(a)s' }));
              // Interpolation is expansion, but bounded: 20 levels of the longest value here.
              if (v !== undefined) expect(v.length).toBeLessThan(1_000_000);
            }
          }
        },
        { runs: 40_000, boundMs: 500 },
      );
    },
    timeout(15),
  );

  it(
    'fail2ban jail.conf + filter.d: jails load (a bad filter stays with its jail) or are E_CONFIG; rules run',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-fuzz-f2b-'));
      dirs.push(dir);
      mkdirSync(join(dir, 'filter.d'));
      const f2bRegex = fc
        .array(
          fc.constantFrom(
            ...regexBits,
            '<F-USER>\\S+</F-USER>',
            '(?P<x>a)',
            '<mode>',
            '%(_daemon)s',
            '^%(__prefix_line)s',
            '<SKIPLINES>',
          ),
          { maxLength: 5 },
        )
        .map((a) => a.join(''));
      const opt = fc.oneof(
        f2bRegex,
        fc.constantFrom('', 'normal', 'aggressive', '%(known/failregex)s'),
        textFrom('%()s<>[]=,"', 20),
      );
      const filter = fc
        .record(
          {
            includes: fc.constantFrom(
              '',
              '[INCLUDES]\nbefore = common.conf\n',
              '[INCLUDES]\nafter = missing.local\n',
            ),
            failregex: fc.array(f2bRegex, { minLength: 1, maxLength: 3 }),
            ignoreregex: f2bRegex,
            prefregex: f2bRegex,
            datepattern: fc.constantFrom('', '{^LN-BEG}', '%%Y-%%m-%%d %%H:%%M:%%S', '%(x)s', '^[%%b'),
            mode: opt,
            extra: fc.tuple(fc.constantFrom('_daemon', 'mdre-normal', 'x', 'mode'), opt),
          },
          { requiredKeys: ['failregex'] },
        )
        .map(
          (r) =>
            `${r.includes ?? ''}[Init]\n${r.mode === undefined ? '' : `mode = ${r.mode}\n`}[Definition]\n` +
            `failregex = ${r.failregex.join('\n            ')}\n` +
            (r.ignoreregex === undefined ? '' : `ignoreregex = ${r.ignoreregex}\n`) +
            (r.prefregex === undefined ? '' : `prefregex = ${r.prefregex}\n`) +
            (r.datepattern === undefined ? '' : `datepattern = ${r.datepattern}\n`) +
            (r.extra === undefined ? '' : `${r.extra[0]} = ${r.extra[1]}\n`),
        );
      const jail = fc
        .record(
          {
            filter: fc.constantFrom(
              'sshd',
              'sshd[mode=aggressive]',
              'sshd[mode="x, y"]',
              'nope',
              'sshd[',
              '%(__name__)s',
            ),
            maxretry: fc.constantFrom('3', '0', '-1', 'x', '99999'),
            findtime: fc.constantFrom('10m', '1x', '600', ''),
            bantime: fc.constantFrom('1h', '-1', '1e9', 'x', '99999999999999999'),
            backend: fc.constantFrom('auto', 'systemd'),
            ignoreip: fc.constantFrom('127.0.0.1/8 ::1', '192.0.2.0/24, example.org', 'x/99'),
            increment: fc.constantFrom('true', 'false'),
            factor: fc.constantFrom('1', 'x', '-2', '1e308'),
            maxtime: fc.constantFrom('1w', 'x', ''),
          },
          { requiredKeys: [] },
        )
        .map(
          (j) =>
            `[DEFAULT]\nbantime = 10m\n[sshd]\nenabled = true\nlogpath = /var/log/auth.log\n` +
            Object.entries(j)
              .map(
                ([k, v]) =>
                  `${k === 'increment' ? 'bantime.increment' : k === 'factor' ? 'bantime.factor' : k === 'maxtime' ? 'bantime.maxtime' : k} = ${v}`,
              )
              .join('\n'),
        );
      f.prop(
        'fail2ban-jails',
        fc.tuple(filter, jail),
        ([filterText, jailText]) => {
          writeFileSync(join(dir, 'filter.d', 'sshd.conf'), filterText);
          writeFileSync(join(dir, 'jail.conf'), jailText);
          const jails = refusedWith(['E_CONFIG', 'E_DURATION'], () =>
            loadFail2banJails(join(dir, 'jail.conf')),
          );
          for (const j of jails ?? []) if (j.rule) runnable([j.rule]);
        },
        { runs: 2_000 },
      );
    },
    timeout(15),
  );

  it(
    'banban YAML: loads or is E_CONFIG',
    () => {
      const blocktype = fc.record(
        {
          target: fc.oneof(fc.constantFrom('ssh', 'web.1'), fc.string({ maxLength: 8 })),
          minocc: fc.oneof(fc.integer({ min: -1, max: 20 }), scalar),
          interval: duration,
          resetconns: fc.oneof(fc.constantFrom(0, 1, 'yes', 'no', true), scalar),
          patterns: fc.oneof(
            regex,
            fc.array(
              fc.oneof(
                regex,
                regex.map((r) => `(?P<ip>${r})`),
              ),
              { maxLength: 2 },
            ),
          ),
        },
        { requiredKeys: [] },
      );
      const cfg = fc.record(
        {
          socket: fc.string({ maxLength: 10 }),
          goodpatterns: fc.array(regex, { maxLength: 2 }),
          ignorenets: fc.array(fc.oneof(docAddress, fc.string({ maxLength: 8 })), { maxLength: 2 }),
          blocktypes: fc.dictionary(
            fc.oneof(fc.constantFrom('ssh', 'web'), fc.string({ maxLength: 5 })),
            blocktype,
            {
              maxKeys: 3,
            },
          ),
        },
        { requiredKeys: [] },
      );
      f.prop(
        'banban-yaml',
        yamlText(cfg),
        (text) => {
          const c = refusedWith(['E_CONFIG'], () => parseBanbanConfig(text, 'banban.yml'));
          if (c) runnable(c.rules);
        },
        { runs: 5_000 },
      );
    },
    timeout(15),
  );

  it(
    'syslog-blacklist.conf: loads or is E_CONFIG; what loads runs',
    () => {
      const line = fc.oneof(
        fc
          .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('', '12h', '1x', '-1', '# c', '1h # c'))
          .map(([n, t]) => `[${n}] ${t}`),
        regex,
        regex.map((r) => `${r}{IP_NUMBER}`),
        fc.constantFrom('', '# comment', '   '),
        textFrom('[]#{}IP_NUMBER() \\', 30),
      );
      f.prop(
        'syslog-blacklist',
        fc.array(line, { maxLength: 8 }).map((l) => l.join('\n')),
        (text) => {
          const rules = refusedWith(['E_CONFIG'], () =>
            parseSyslogBlacklistConf(text, 'syslog-blacklist.conf'),
          );
          if (rules) runnable(rules);
        },
        { runs: 43_000 },
      );
    },
    timeout(15),
  );
});
