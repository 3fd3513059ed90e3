import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { busConfigSchema, createTransport } from '../../src/bus/create.js';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { parseYamlText } from '../../src/core/config-file.js';
import { DEFAULT_BROKER_PORT } from '../../src/core/paths.js';

const schema = z.object({ bus: busConfigSchema.default({ type: 'embedded' }) });
const parse = (yaml: string) => parseYamlText(yaml, schema, 'rampart.yaml').bus;
const dir = mkdtempSync(join(tmpdir(), 'rampart-bus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bus config', () => {
  it('bus config - defaults to the embedded broker on 7781 for the hub', () => {
    const t = createTransport(parse(''), { role: 'hub', fleet: 'default' });
    expect(t).toBeInstanceOf(EmbeddedMqttBroker);
    expect((t as EmbeddedMqttBroker).host).toBe('127.0.0.1');
    const b = createTransport(parse('bus: {port: 9999}'), { role: 'hub', fleet: 'default', brokerPort: 0 });
    expect(b).toBeInstanceOf(EmbeddedMqttBroker);
    expect(DEFAULT_BROKER_PORT).toBe(7781);
  });

  it('bus config - an agent gets a persistent MQTT client named after its fleet and node', () => {
    const t = createTransport(parse('bus:\n  type: embedded\n  url: mqtt://hub:7781\n'), {
      role: 'agent',
      fleet: 'prod',
      node: 'web1',
    });
    expect(t).toBeInstanceOf(MqttClientTransport);
    expect((t as unknown as { opts: { clientId: string } }).opts.clientId).toBe('rampart-prod-web1');
  });

  it('bus config - errors name the file, line and key', () => {
    expect(() => parse('bus:\n  type: mqtt\n')).toThrow(
      /rampart\.yaml:2: bus\.url: bus\.type mqtt needs url/,
    );
    expect(() => parse('bus:\n  type: kafka\n')).toThrow(/rampart\.yaml:2: bus\.type/);
    expect(() => parse('bus:\n  type: mqtt\n  url: http://x\n')).toThrow(
      /bus\.url: expected mqtt:\/\/host:port/,
    );
    expect(() => parse('bus:\n  prot: 1\n')).toThrow(/rampart\.yaml:2: bus/);
    expect(() =>
      createTransport(parse(''), { role: 'agent', fleet: 'f', node: 'n', file: 'a.yaml' }),
    ).toThrow(/a\.yaml: bus\.url: agents connect to the hub's broker/);
  });

  it('bus config - unreadable TLS and password files are named', () => {
    const cfg = parse(
      `bus:\n  type: mqtt\n  url: mqtts://b:8883\n  tls: {ca: ${join(dir, 'missing.pem')}}\n`,
    );
    expect(() => createTransport(cfg, { role: 'hub', fleet: 'f', file: 'r.yaml' })).toThrow(
      /r\.yaml: bus\.tls\.ca: cannot read .*missing\.pem: ENOENT/,
    );
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'secret\n');
    const t = createTransport(
      parse(`bus:\n  type: mqtt\n  url: mqtt://b:1883\n  username: u\n  passwordFile: ${pw}\n`),
      {
        role: 'hub',
        fleet: 'f',
      },
    );
    expect((t as unknown as { opts: { password: string; clientId: string } }).opts).toMatchObject({
      password: 'secret',
      clientId: 'rampart-f-hub',
    });
  });
});
