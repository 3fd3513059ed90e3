import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AmqpTransport } from '../../src/bus/amqp.js';
import { busConfigSchema } from '../../src/bus/config.js';
import { createTransport, defaultClientId } from '../../src/bus/create.js';
import { loadTransport, transportWith } from '../../src/bus/from-config.js';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { MqttHubGroup } from '../../src/bus/mqtt-hub-group.js';
import { NatsTransport } from '../../src/bus/nats.js';
import { busFromFlag, busUrls } from '../../src/bus/urls.js';
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

  it('bus config - a hub on external MQTT is named after its hub.id; on NATS and RabbitMQ the hubs share one id', () => {
    const hub = { role: 'hub' as const, fleet: 'prod', instance: '0123456789abcdef' };
    const t = createTransport(parse('bus:\n  type: mqtt\n  url: mqtt://b:1883\n'), hub);
    expect((t as unknown as { opts: { clientId: string } }).opts.clientId).toBe(
      'rampart-prod-hub-0123456789abcdef',
    );
    // Two hubs alike differ; an explicit bus.clientId still wins.
    expect(defaultClientId('mqtt', { ...hub, instance: 'fedcba9876543210' })).toBe(
      'rampart-prod-hub-fedcba9876543210',
    );
    const set = createTransport(parse('bus:\n  type: mqtt\n  url: mqtt://b:1883\n  clientId: mine\n'), hub);
    expect((set as unknown as { opts: { clientId: string } }).opts.clientId).toBe('mine');
    // One durable consumer / one queue for every hub: each report is handled once.
    expect(defaultClientId('nats', hub)).toBe('rampart-prod-hub');
    expect(defaultClientId('amqp', hub)).toBe('rampart-prod-hub');
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

  it('bus config - nats and amqp build their transports; url may be a list; --bus picks the type', () => {
    const n = createTransport(
      parse(
        'bus:\n  type: nats\n  url: [nats://a:4222, nats://b:4222]\n  replicas: 3\n  heartbeatSeconds: 10\n',
      ),
      {
        role: 'agent',
        fleet: 'prod',
        node: 'web1.example.org',
      },
    );
    expect(n).toBeInstanceOf(NatsTransport);
    const no = (n as unknown as { o: { servers: string[]; clientId: string; replicas: number } }).o;
    expect(no).toMatchObject({
      servers: ['nats://a:4222', 'nats://b:4222'],
      clientId: 'rampart-prod-web1.example.org',
      replicas: 3,
      heartbeatMs: 10_000,
    });
    expect(() => parse('bus:\n  type: nats\n  url: nats://a:1\n  heartbeatSeconds: 0\n')).toThrow(
      /bus\.heartbeatSeconds/,
    );
    const a = createTransport(
      parse('bus:\n  type: amqp\n  url: amqp://h/v1\n  username: u\n  password: p@ss\n'),
      {
        role: 'hub',
        fleet: 'prod',
      },
    );
    expect(a).toBeInstanceOf(AmqpTransport);
    expect((a as unknown as { o: { urls: string[] } }).o.urls).toEqual(['amqp://u:p%40ss@h/v1']);
    expect(() => parse('bus:\n  type: nats\n  url: mqtt://x:1\n')).toThrow(/bus\.url: expected nats:\/\//);
    expect(() => parse('bus:\n  type: amqp\n')).toThrow(/bus\.url: bus\.type amqp needs url/);
    expect(busFromFlag({ username: 'u' }, 'nats://a:4222,nats://b:4222')).toEqual({
      username: 'u',
      type: 'nats',
      url: 'nats://a:4222,nats://b:4222',
    });
    expect(busFromFlag(undefined, 'amqps://h')).toMatchObject({ type: 'amqp' });
    expect(() => busFromFlag(undefined, 'kafka://h')).toThrow(/--bus: expected mqtt:\/\//);
    expect(busUrls(' a, b ,,')).toEqual(['a', 'b']);
  });

  it('bus config - unreadable TLS and password files are named', () => {
    const cfg = parse(
      `bus:\n  type: mqtt\n  url: mqtts://b:8883\n  tls: {ca: ${join(dir, 'missing.pem')}}\n`,
    );
    expect(() => createTransport(cfg, { role: 'hub', fleet: 'f', file: 'r.yaml' })).toThrow(
      /r\.yaml: bus\.tls\.ca: cannot read .*missing\.pem: no such file \(ENOENT\)/,
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

  it('bus config - loadTransport builds the same transport as createTransport from only the class it needs', async () => {
    const agent = { role: 'agent' as const, fleet: 'prod', node: 'web1' };
    const hub = { role: 'hub' as const, fleet: 'prod', brokerPort: 0 };
    const cases = [
      { yaml: '', ctx: hub, cls: EmbeddedMqttBroker },
      { yaml: 'bus:\n  url: mqtt://hub:7781\n', ctx: agent, cls: MqttClientTransport },
      { yaml: 'bus:\n  type: mqtt\n  url: mqtt://b:1883\n', ctx: hub, cls: MqttHubGroup },
      { yaml: 'bus:\n  type: nats\n  url: nats://a:4222\n', ctx: agent, cls: NatsTransport },
      { yaml: 'bus:\n  type: amqp\n  url: amqp://h/v1\n', ctx: hub, cls: AmqpTransport },
    ];
    for (const c of cases) {
      const t = await loadTransport(parse(c.yaml), c.ctx);
      expect(t).toBeInstanceOf(c.cls);
      expect(createTransport(parse(c.yaml), c.ctx)).toBeInstanceOf(c.cls);
    }
    // The factory uses only the classes it is given: an agent's MQTT client needs nothing else.
    const mqtt = parse('bus:\n  url: mqtt://hub:7781\n');
    expect(transportWith({ MqttClientTransport }, mqtt, agent)).toBeInstanceOf(MqttClientTransport);
    expect(() => transportWith({ MqttClientTransport }, parse(cases[3]!.yaml), agent)).toThrow(
      /NatsTransport was not loaded/,
    );
    // Config errors are the same as createTransport's.
    await expect(loadTransport(parse('bus:\n  type: embedded\n'), agent)).rejects.toThrow(
      /agents connect to the hub/,
    );
  });
});
