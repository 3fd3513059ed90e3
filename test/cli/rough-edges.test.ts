import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';
import { MAIN, oneLine, rampart } from './run-cli.js';

const req = requirements('operator CLI rough edges', [`file:${MAIN}`]);

describe.skipIf(req.skip)('operator CLI rough edges', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-rough-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'missing.conf');
  const env = { RAMPART_DATA: join(dir, 'data') };

  // Every place an operator names a file: a wrong path is exit 2 and one sentence naming it.
  const cases: string[][] = [
    ['check', missing],
    ['check', dir],
    ['check', '--rules', missing, '/dev/null'],
    ['check', '--fail2ban-filter', missing, '/dev/null'],
    ['import', missing],
    ['import', dir],
    ['firewall', 'add', '--backend', 'dry-run', '--from-file', missing],
    ['firewall', 'sync', '--backend', 'dry-run', '--from-file', dir],
    ['firewall', 'list', '--backend', 'dry-run', '--config', missing],
    ['agent', '--config', missing],
    ['agent', '--config', dir],
    ['hub', '--config', missing],
    ['up', '--config', missing],
    ['f2b-zmq', 'publisher', '--config', missing],
    ['f2b-zmq', 'monitor', '--config', dir],
    ['f2b-zmq', 'subscriber', '--config', missing],
    ['net2ban', '--config', missing],
    ['net2ban', '--config', dir],
    ['net2banctl', 'list_clients', '--config', missing],
    ['banban', '--config', missing],
    ['syslog-blacklist', '--config', missing],
    ['vallumd', '--config', missing],
  ];
  it.concurrent.each(
    cases,
  )('a missing file or a folder is exit 2 and one sentence: %s %s %s %s', async (...args) => {
    const r = await rampart(args, { env });
    expect(r.code, r.stderr).toBe(2);
    const lines = oneLine(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^rampart: /);
    expect(lines[0]).toContain(args.at(-1) === '/dev/null' ? missing : args.at(-1));
    expect(lines[0]).toMatch(/no such file|not found|is a folder/);
    // The errno code may follow the sentence, never stand for it.
    expect(lines[0]).not.toMatch(/: E[A-Z]+$/);
  });

  it('RAMPART_LOG_LEVEL=bogus is one usage error, before anything starts', async () => {
    const r = await rampart(['up', '--port', '0', '--broker-port', '0'], {
      env: { ...env, RAMPART_LOG_LEVEL: 'bogus' },
    });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toEqual([
      'rampart: RAMPART_LOG_LEVEL / --log-level: "bogus" is not a log level (fatal, error, warn, info, debug, trace, silent)',
    ]);
    expect(existsSync(join(dir, 'data', 'hub'))).toBe(false);
  });

  it('--log-level and --log-format are documented and checked before or after the command', async () => {
    const help = await rampart(['agent', '--help']);
    expect(help.stdout).toMatch(/--log-level <level>/);
    expect(help.stdout).toMatch(/--log-format <format>/);
    expect((await rampart(['--help'])).stdout).toMatch(/--log-level <level>/);
    const after = await rampart(['check', '--log-level', 'loud', '/dev/null']);
    expect(after.code).toBe(2);
    expect(after.stderr).toMatch(/"loud" is not a log level/);
    const before = await rampart(['--log-format', 'xml', 'check', '/dev/null']);
    expect(before.code).toBe(2);
    expect(oneLine(before.stderr)).toEqual([
      'rampart: RAMPART_LOG_FORMAT / --log-format: "xml" is not json or text',
    ]);
  });

  it('a typo in firewall.backend stops "up" with file:line before a hub or broker starts', async () => {
    const cfg = join(dir, 'typo.yaml');
    writeFileSync(cfg, 'agent:\n  watch: []\nfirewall:\n  backend: nftabels\n');
    const r = await rampart(['up', '--config', cfg, '--port', '0', '--broker-port', '0'], { env });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toEqual([
      `rampart: ${cfg}:4: firewall.backend: unknown backend "nftabels"; valid: auto, nftables, dry-run, ipset, xt_recent, command, fail2ban`,
    ]);
    expect(r.stdout).toBe('');
    expect(existsSync(join(dir, 'data', 'hub'))).toBe(false);
    const flag = await rampart(['agent', '--firewall', 'iptabels'], { env });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--firewall: unknown backend "iptabels"/);
  });
});

const asNobody = requirements('firewall list as an unprivileged user', [
  'root',
  'cmd:setpriv',
  `file:${MAIN}`,
]);

describe.skipIf(asNobody.skip)('firewall list without privileges', () => {
  it('says it cannot read the kernel (exit 1) instead of printing an empty list', async () => {
    const r = await rampart(['firewall', 'list'], {
      prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      env: { HOME: '/nonexistent' },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toEqual([
      "rampart: firewall list: cannot read the kernel's sets: not running as root (use sudo, or CAP_NET_ADMIN)",
    ]);
    // Asking for the dry-run backend by name still works: it is what the operator chose.
    const dry = await rampart(['firewall', 'list', '--backend', 'dry-run', '--json'], {
      prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
      env: { HOME: '/nonexistent' },
    });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe('[]\n');
  });
});

const tty = requirements('log format on a terminal', ['cmd:script', `file:${MAIN}`]);

describe.skipIf(tty.skip)('logs for people on a terminal, JSON for machines', () => {
  /** Runs the CLI under a pseudo-terminal (util-linux script), returning what the terminal showed. */
  const onTerminal = (args: string[]) => {
    const cmd = [process.execPath, MAIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, RAMPART_LOG_FORMAT: '', RAMPART_LOG_LEVEL: 'info' },
    });
    return { code: r.status, out: r.stdout.replace(/\r/g, '') };
  };
  const add = ['firewall', 'add', '--backend', 'dry-run', '198.51.100.7'];

  it('a terminal gets readable lines, not JSON', () => {
    const r = onTerminal(add);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/\{"level"/);
    expect(r.out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}rampart: .*198\.51\.100\.7/m);
  });

  it('a pipe gets JSON, and --log-format forces either', async () => {
    const piped = await rampart(add, { env: { RAMPART_LOG_LEVEL: 'info' } });
    expect(piped.code).toBe(0);
    const first = oneLine(piped.stderr)[0]!;
    expect(JSON.parse(first)).toMatchObject({ level: 30 });
    expect(onTerminal([...add, '--log-format', 'json']).out).toMatch(/^\{"level":30/m);
    const text = await rampart([...add, '--log-format', 'text'], { env: { RAMPART_LOG_LEVEL: 'info' } });
    expect(oneLine(text.stderr)[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}rampart: /);
  });
});
