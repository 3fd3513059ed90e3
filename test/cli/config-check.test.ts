import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfigFile } from '../../src/config/check.js';
import { requirements } from '../helpers/requirements.js';
import { MAIN, oneLine, rampart } from './run-cli.js';

describe('rampart config check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-config-check-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const rules = write(
    'bad-rules.yaml',
    'rules:\n  - name: x\n    patterns: ["fail <HOST>"]\n    maxretry: zero\n',
  );
  const good = write('good-rules.yaml', 'rules:\n  - name: x\n    patterns: ["fail <HOST>"]\n');

  it('the shipped example is valid', async () => {
    const r = await checkConfigFile('config/rampart.example.yaml');
    expect(r.findings.filter((f) => f.level === 'error')).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('reports every schema error at once, each with file:line: key', async () => {
    const file = write(
      'many.yaml',
      'fleet: "bad fleet"\nagent:\n  reconcileInterval: 1x\nfirewall:\n  backend: nftabels\nhub:\n  port: 99999\nunknwn: 1\n',
    );
    const r = await checkConfigFile(file);
    expect(r.ok).toBe(false);
    expect(r.findings.map((f) => [f.line, f.key])).toEqual([
      [1, 'fleet'],
      [3, 'agent.reconcileInterval'],
      [5, 'firewall.backend'],
      [7, 'hub.port'],
      [8, 'unknwn'],
    ]);
    expect(r.findings[2]!.text).toBe(
      `${file}:5: firewall.backend: unknown backend "nftabels"; valid: auto, nftables, dry-run, ipset, xt_recent, command, fail2ban`,
    );
    expect(r.findings[4]!.text).toBe(`${file}:8: unknwn: unknown key (a typo?)`);
  });

  it('loads the rule files it references, and names missing files where they are listed', async () => {
    mkdirSync(join(dir, 'folder'), { recursive: true });
    const file = write(
      'refs.yaml',
      [
        'rules:',
        '  builtin: [sshd, ssh]',
        `  files: [${good}, ${rules}, ${join(dir, 'absent.yaml')}]`,
        'firewall:',
        '  backend: command',
        `  command: {file: ${join(dir, 'folder')}}`,
        'agent:',
        `  watch: [${join(dir, 'later.log')}]`,
        '',
      ].join('\n'),
    );
    const r = await checkConfigFile(file);
    expect(r.ok).toBe(false);
    expect(r.ruleFiles).toEqual([good]);
    const texts = r.findings.map((f) => `${f.level} ${f.text}`);
    expect(texts).toEqual([
      expect.stringMatching(/^error .*refs\.yaml:2: rules\.builtin\.1: no built-in rule "ssh"/),
      `error ${rules}:4: rules.0.maxretry: Invalid input: expected number, received string`,
      `error ${file}:3: rules.files.2: ${join(dir, 'absent.yaml')}: cannot read: no such file (ENOENT)`,
      `error ${file}:6: firewall.command.file: ${join(dir, 'folder')}: it is a folder, not a file`,
      `warn ${file}:8: agent.watch.0: ${join(dir, 'later.log')}: no such file (ENOENT) (the agent waits for it)`,
    ]);
  });

  it('invalid YAML is reported with its line', async () => {
    const r = await checkConfigFile(write('broken.yaml', 'agent:\n  watch: [a\nfleet: x\n'));
    expect(r.ok).toBe(false);
    expect(r.findings[0]!.text).toMatch(/broken\.yaml:\d+: invalid YAML/);
  });

  const cli = requirements('config check CLI', [`file:${MAIN}`]);
  it.skipIf(cli.skip)(
    'the command prints ok (exit 0) or every error (exit 2); a missing file is exit 2',
    async () => {
      const ok = await rampart(['config', 'check', write('ok.yaml', `rules:\n  files: [${good}]\n`)]);
      expect(ok).toMatchObject({ code: 0, stderr: '' });
      expect(ok.stdout).toBe(`ok: ${join(dir, 'ok.yaml')} and 1 rule file(s)\n`);
      const bad = await rampart(['config', 'check', join(dir, 'many.yaml')]);
      expect(bad.code).toBe(2);
      expect(oneLine(bad.stdout)).toHaveLength(5);
      expect(oneLine(bad.stdout)[0]).toBe(
        `error: ${join(dir, 'many.yaml')}:1: fleet: letters, digits, _ and - only`,
      );
      const json = await rampart(['config', 'check', '--json', join(dir, 'many.yaml')]);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, findings: expect.any(Array) });
      const none = await rampart(['config', 'check', join(dir, 'none.yaml')]);
      expect(none.code).toBe(2);
      expect(none.stdout).toMatch(/none\.yaml: cannot read: no such file \(ENOENT\)/);
    },
  );
});
