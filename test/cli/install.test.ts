import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';
import { MAIN } from './run-cli.js';

const req = requirements('install', [`file:${MAIN}`, 'cmd:npm']);

describe.skipIf(req.skip)('installing the rampart command', () => {
  const root = mkdtempSync(join(tmpdir(), 'rampart-install-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the npm tarball carries the program, rules, docs, config, packaging and the licence', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      encoding: 'utf8',
    });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    for (const f of [
      'dist/cli/main.js',
      'rules/sshd.yaml',
      'config/rampart.example.yaml',
      'docs/config.md',
      'docs/operations.md',
      'packaging/install.sh',
      'packaging/systemd/rampart.service',
      'packaging/fail2ban/action.d/rampart.conf',
      'README.md',
      'LICENSE',
    ])
      expect(files).toContain(f);
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('src/'))).toBe(false);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string };
    expect(pkg.license).toBe('MIT');
    expect(readFileSync('LICENSE', 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} the rampart authors\n/,
    );
  });

  it('install.sh --link puts a working rampart on PATH, with units, config and completion', () => {
    // A configuration already there must survive.
    execFileSync('mkdir', ['-p', join(root, 'etc/rampart')]);
    writeFileSync(join(root, 'etc/rampart/rampart.yaml'), 'fleet: mine\n');
    execFileSync('mkdir', ['-p', join(root, 'etc/fail2ban/action.d')]);
    // Twice: a second run over an installed copy changes nothing and still succeeds.
    for (let i = 0; i < 2; i++) {
      const r = spawnSync('sh', ['packaging/install.sh', '--link', '--root', root], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    expect(readFileSync(join(root, 'etc/fail2ban/action.d/rampart.conf'), 'utf8')).toBe(
      readFileSync('packaging/fail2ban/action.d/rampart.conf', 'utf8'),
    );
    const bin = join(root, 'usr/bin/rampart');
    expect(lstatSync(bin).isSymbolicLink()).toBe(true);
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
    for (const u of ['rampart.service', 'rampart-hub.service', 'rampart-agent.service'])
      expect(readFileSync(join(root, 'etc/systemd/system', u), 'utf8')).toMatch(
        /ExecStart=\/usr\/bin\/rampart /,
      );
    expect(readFileSync(join(root, 'etc/rampart/rampart.yaml'), 'utf8')).toBe('fleet: mine\n');
    expect(readFileSync(join(root, 'usr/share/bash-completion/completions/rampart'), 'utf8')).toMatch(
      /complete -F _rampart rampart/,
    );
    expect(existsSync(join(root, 'usr/share/zsh/vendor-completions/_rampart'))).toBe(true);
  });

  it('install.sh refuses an unknown option with exit 2', () => {
    const r = spawnSync('sh', ['packaging/install.sh', '--bogus'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('install.sh: unknown option --bogus (see --help)\n');
  });
});
