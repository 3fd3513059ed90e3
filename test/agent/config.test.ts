import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/schema.js';

describe('rampart.yaml', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('the documented example loads and composes every section', () => {
    const c = loadConfig('config/rampart.example.yaml');
    expect(c.fleet).toBe('default');
    expect(c.agent.reconcileInterval).toBe(60);
    expect(c.agent.watch).toEqual(['/var/log/auth.log']);
    expect(c.rules.builtin).toEqual(['sshd']);
    expect(c.sources[0]).toMatchObject({ type: 'journald', units: ['ssh.service'] });
    expect(c.firewall).toMatchObject({ backend: 'auto' });
    expect(c.bus).toMatchObject({ type: 'embedded', port: 7781 });
    expect(c.hub).toMatchObject({ port: 7780 });
  });

  it('an empty file runs on defaults', () => {
    const c = loadConfig(write('empty.yaml', ''));
    expect(c.allowlist).toEqual([]);
    expect(c.agent.heartbeatInterval).toBe(10);
  });

  it.each([
    [
      'bad1.yaml',
      'agent:\n  reconcileInterval: soon\n',
      /bad1\.yaml:2: agent\.reconcileInterval: .*not a duration/,
    ],
    [
      'bad2.yaml',
      'allowlist:\n  - 192.0.2.1\n  - 300.1.2.3\n',
      /bad2\.yaml:3: allowlist\.1: .*not an IPv4 or IPv6 address/,
    ],
    [
      'bad3.yaml',
      'firewall:\n  backend: nftables\n  nftables:\n    verdict: explode\n',
      /bad3\.yaml:4: firewall\.nftables\.verdict/,
    ],
    ['bad4.yaml', 'sources:\n  - type: file\n', /bad4\.yaml:2: sources\.0/],
    ['bad5.yaml', 'agnet:\n  watch: []\n', /bad5\.yaml:1: agnet: unknown key/],
    ['bad6.yaml', 'bus:\n  type: mqtt\n', /bad6\.yaml:2: bus\.url/],
  ])('a mistake names the file, the line and the key (%s)', (name, text, msg) => {
    expect(() => loadConfig(write(name, text))).toThrow(msg);
  });

  it('an explicit file that does not exist is an error, not the defaults', () => {
    expect(() => loadConfig(join(dir, 'nope.yaml'))).toThrow(/nope\.yaml: config file not found/);
  });
});
