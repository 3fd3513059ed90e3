import { z } from 'zod';
import { busUrls, SCHEMES, URL_HINT } from './urls.js';

/**
 * The `bus:` section of rampart.yaml. `embedded` (default): the hub runs the broker itself on
 * `port`; agents connect to it at `url` (written by `rampart join`). `mqtt`: an existing MQTT
 * 3.1.1 broker; `nats`: NATS with JetStream; `amqp`: RabbitMQ (AMQP 0-9-1) — for hub and agents
 * alike, `url` one server or a list. TLS files are paths.
 */
export const busConfigSchema = z
  .object({
    type: z.enum(['embedded', 'mqtt', 'nats', 'amqp']).default('embedded'),
    url: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
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
    /** nats: a .creds file (JWT + nkey seed), or an nkey seed file. */
    credsFile: z.string().optional(),
    nkeyFile: z.string().optional(),
    /** nats: JetStream stream replicas (1, or 3/5 on a cluster). Default 1. */
    replicas: z.number().int().min(1).max(5).optional(),
    /** nats: how long the decisions stream keeps messages for agents that were away. Default 7 d. */
    maxAgeSeconds: z.number().int().min(60).optional(),
    /**
     * nats: each consumer's idle heartbeat (pulls expire after 5), default 1. Raise it for fleets
     * of thousands of agents (docs/scaling.md): fewer idle messages, a dead server noticed later.
     */
    heartbeatSeconds: z.number().min(0.5).max(60).optional(),
    /** amqp: queue type; quorum needs RabbitMQ 3.8+ (replicated, the default), classic otherwise. */
    queueType: z.enum(['quorum', 'classic']).optional(),
    /** base64 of 32 bytes: AES-256-GCM key for envelope bodies (see trust/envelope.ts). */
    encryptionKey: z.string().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const urls = busUrls(c.url);
    if (c.type !== 'embedded') {
      const scheme = SCHEMES[c.type];
      if (urls.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: `bus.type ${c.type} needs url: ${URL_HINT[c.type]}`,
        });
      }
      for (const u of urls) {
        if (!scheme.test(u))
          ctx.addIssue({ code: 'custom', path: ['url'], message: `expected ${URL_HINT[c.type]}` });
      }
    } else {
      for (const u of urls) {
        if (!SCHEMES.mqtt.test(u))
          ctx.addIssue({ code: 'custom', path: ['url'], message: `expected ${URL_HINT.mqtt}` });
      }
    }
    if (c.password !== undefined && c.passwordFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message: 'give password or passwordFile, not both',
      });
    }
    if (c.credsFile !== undefined && c.nkeyFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['nkeyFile'], message: 'give credsFile or nkeyFile, not both' });
    }
  });

export type BusConfig = z.output<typeof busConfigSchema>;
