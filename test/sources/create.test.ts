import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseYamlText } from '../../src/core/config-file.js';
import { createSource, createSources, sourcesSchema } from '../../src/sources/create.js';
import { FileSource } from '../../src/sources/file.js';
import { JournaldSource } from '../../src/sources/journald.js';
import { StreamSource } from '../../src/sources/stdin.js';
import { SyslogSource } from '../../src/sources/syslog.js';

const schema = z.object({ sources: sourcesSchema });

describe('sources config', () => {
  it('builds every kind of source from YAML', () => {
    const cfg = parseYamlText(
      `sources:
  - type: file
    paths: [/var/log/auth.log, "/var/log/nginx/*.log"]
  - type: syslog
    udp: 514
    tcp: "[::1]:1514"
    unix: { path: /run/rampart/syslog.sock, mode: "0660" }
  - type: journald
    units: [ssh.service]
    matches: [SYSLOG_IDENTIFIER=sshd]
  - type: stdin
`,
      schema,
      'rampart.yaml',
    );
    expect(cfg.sources[1]).toMatchObject({
      udp: { host: '127.0.0.1', port: 514 },
      tcp: { host: '::1', port: 1514 },
      unix: { path: '/run/rampart/syslog.sock', mode: 0o660 },
    });
    const built = cfg.sources.map((c) => createSource(c));
    expect(built.map((s) => s.constructor)).toEqual([FileSource, SyslogSource, JournaldSource, StreamSource]);
  });

  it('mistakes name the file, line and key', () => {
    expect(() =>
      parseYamlText('sources:\n  - type: file\n    paths: [a]\n    fromstart: true\n', schema, 'r.yaml'),
    ).toThrow(/^r\.yaml:4: sources\.0\.fromstart: unknown key \(a typo\?\)/);
    expect(() =>
      parseYamlText('sources:\n  - type: syslog\n    udp: "localhost:99"\n', schema, 'r.yaml'),
    ).toThrow(/^r\.yaml:3: sources\.0\.udp: expected PORT, "IPV4:PORT"/);
    expect(() =>
      parseYamlText('sources:\n  - type: syslog\n    unix: {path: /s, mode: 660}\n', schema, 'r.yaml'),
    ).toThrow(/sources\.0\.unix/);
    expect(() => createSources([{ type: 'syslog' }])).toThrow(
      /^sources\.0: give at least one of udp, tcp, unix/,
    );
    expect(() => createSources([{ type: 'kafka' }])).toThrow(/sources\.0\.type: Invalid discriminator/);
    expect(() => createSources([{ type: 'syslog', udp: 70000 }])).toThrow(/sources\.0\.udp/);
  });
});
