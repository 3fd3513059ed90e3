import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_BROKER_PORT, DEFAULT_LISTEN } from '../core/paths.js';
import { MqttClientTransport } from './mqtt-client.js';
import { EmbeddedMqttBroker } from './mqtt-embedded.js';
import type { Transport } from './transport.js';

/**
 * The `bus:` section of rampart.yaml. `embedded` (default): the hub runs the broker itself on
 * `port`; agents connect to it at `url` (written by `rampart join`). `mqtt`: an existing MQTT
 * 3.1.1 broker at `url` for hub and agents alike. TLS files are paths.
 */
export const busConfigSchema = z
  .object({
    type: z.enum(['embedded', 'mqtt']).default('embedded'),
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^/]+\/?$/, 'expected mqtt://host:port or mqtts://host:port')
      .optional(),
    port: z.number().int().min(0).max(65535).optional(),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    passwordFile: z.string().optional(),
    clientId: z.string().min(1).max(128).optional(),
    tls: z
      .object({
        ca: z.string().optional(),
        cert: z.string().optional(),
        key: z.string().optional(),
        rejectUnauthorized: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** base64 of 32 bytes: AES-256-GCM key for envelope bodies (see trust/envelope.ts). */
    encryptionKey: z.string().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.type === 'mqtt' && !c.url) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'bus.type mqtt needs url: mqtt://host:1883' });
    }
    if (c.password !== undefined && c.passwordFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message: 'give password or passwordFile, not both',
      });
    }
  });

export type BusConfig = z.output<typeof busConfigSchema>;

export interface TransportContext {
  role: 'hub' | 'agent';
  fleet: string;
  /** The agent's node name (agents only): its client id and reports topic. */
  node?: string;
  /** `--listen`: the embedded broker's address (hub only). */
  listen?: string;
  /** `--broker-port`: overrides `bus.port`. */
  brokerPort?: number;
  /** Embedded broker auth: username = node name, password = node token (hub only). */
  authenticate?: (username: string, password: string) => boolean | Promise<boolean>;
  /** Config file, for error messages. */
  file?: string;
  logger?: Logger;
}

/**
 * Builds the Transport a hub or agent should use. The hub with `embedded` gets the broker
 * itself ({@link EmbeddedMqttBroker}); everything else is an MQTT client with a stable,
 * persistent-session client id (`rampart-<fleet>-<node>`, `rampart-<fleet>-hub`).
 */
export function createTransport(config: BusConfig, ctx: TransportContext): Transport {
  const where = (key: string) => ({ file: ctx.file, key: `bus.${key}` });
  const tls = readTls(config, where);
  if (config.type === 'embedded' && ctx.role === 'hub') {
    if (tls && (!tls.cert || !tls.key))
      throw new ConfigError('the embedded broker needs both cert and key', where('tls'));
    return new EmbeddedMqttBroker({
      host: ctx.listen ?? DEFAULT_LISTEN,
      port: ctx.brokerPort ?? config.port ?? DEFAULT_BROKER_PORT,
      ...(ctx.authenticate ? { authenticate: ctx.authenticate } : {}),
      ...(tls?.cert && tls.key
        ? { tls: { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) } }
        : {}),
      ...(ctx.logger ? { logger: ctx.logger } : {}),
    });
  }
  if (!config.url) {
    throw new ConfigError(
      "agents connect to the hub's broker: set url (rampart join writes it), e.g. mqtt://hub:7781",
      where('url'),
    );
  }
  if (ctx.role === 'agent' && !ctx.node)
    throw new ConfigError('an agent needs its node name', where('clientId'));
  const password =
    config.passwordFile !== undefined
      ? readText(config.passwordFile, where('passwordFile')).trim()
      : config.password;
  return new MqttClientTransport({
    url: config.url,
    clientId: config.clientId ?? `rampart-${ctx.fleet}-${ctx.role === 'hub' ? 'hub' : ctx.node}`,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });
}

function readTls(config: BusConfig, where: (key: string) => { file?: string; key: string }) {
  const t = config.tls;
  if (!t) return undefined;
  return {
    ...(t.ca ? { ca: readText(t.ca, where('tls.ca')) } : {}),
    ...(t.cert ? { cert: readText(t.cert, where('tls.cert')) } : {}),
    ...(t.key ? { key: readText(t.key, where('tls.key')) } : {}),
    ...(t.rejectUnauthorized !== undefined ? { rejectUnauthorized: t.rejectUnauthorized } : {}),
  };
}

function readText(path: string, where: { file?: string; key: string }): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      where,
      {
        cause: err,
      },
    );
  }
}
