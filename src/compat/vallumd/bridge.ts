import { z } from 'zod';
import { MqttClientTransport } from '../../bus/mqtt-client.js';
import type { Transport } from '../../bus/transport.js';
import { tryParseTarget } from '../../core/address.js';
import type { Decision } from '../../core/decision.js';
import type { Logger } from '../../core/logger.js';
import { formatTopic, parsePayload, parseTopic } from './codec.js';

/**
 * `vallumd.bridge` in a hub's rampart.yaml: keeps a vallumd fleet in step during a migration.
 * `publish` sends every fleet decision to vallumd topics on their broker; `intake` (off unless
 * listed) takes vallumd messages in as unsigned reports, through the allowlist and policy.
 */
export const vallumdBridgeSchema = z.strictObject({
  /** The vallumd fleet's broker, `mqtt://host:1883` or `mqtts://…`. */
  url: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL'),
  username: z.string().optional(),
  password: z.string().optional(),
  clientId: z.string().min(1).max(23).default('rampart-vallumd-bridge'),
  /** The ipset each family's bans go to on vallumd nodes (`SET/add`, `SET/del`). */
  publish: z.strictObject({ v4: z.string().min(1).optional(), v6: z.string().min(1).optional() }).optional(),
  /** vallumd topics whose `add` messages become reports; `del` messages are not taken in. */
  intake: z.array(z.string().min(1)).default([]),
  /** The node name intake reports carry (rate limits and `origin` are per node). */
  node: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .default('vallumd'),
  /** Fleet set the intake bans go to; default the fleet's default set. */
  set: z.string().optional(),
});

export type VallumdBridgeConfig = z.input<typeof vallumdBridgeSchema>;

/** The part of a hub the bridge needs. */
export interface BridgeHub {
  onDecision(fn: (d: Decision) => void): () => void;
  core: { report(node: string, body: unknown): Promise<{ result: string; reason?: string }> };
}

export interface VallumdBridge {
  /** Decisions waiting for the broker (it was down when they were made). */
  pending(): number;
  close(): Promise<void>;
}

const MAX_WAITING = 100_000;

/**
 * Starts the bridge. Decisions made while the vallumd broker is down wait in memory (bounded)
 * and go out, in order, when it is back. Ranges are not sent: vallumd accepts single addresses
 * only. Expiry is left to the vallumd sets' own timeouts, as for any rampart agent.
 */
export async function startVallumdBridge(
  hub: BridgeHub,
  config: VallumdBridgeConfig,
  log: Logger,
  transport?: Transport,
): Promise<VallumdBridge> {
  const cfg = vallumdBridgeSchema.parse(config);
  const bus =
    transport ??
    new MqttClientTransport({
      url: cfg.url,
      clientId: cfg.clientId,
      clean: false,
      subscribeQos: 2,
      ...(cfg.username !== undefined ? { username: cfg.username } : {}),
      ...(cfg.password !== undefined ? { password: cfg.password } : {}),
      logger: log,
    });
  const waiting: Array<{ topic: string; payload: Buffer }> = [];
  let flushing = false;
  const flush = async () => {
    if (flushing) return;
    flushing = true;
    try {
      while (waiting.length > 0) {
        const m = waiting[0]!;
        try {
          await bus.publish(m.topic, m.payload);
        } catch {
          return; // still down: the next 'up' flushes again
        }
        waiting.shift();
      }
    } finally {
      flushing = false;
    }
  };
  bus.onStatus((s) => {
    if (s === 'up') void flush();
  });
  const publish = cfg.publish;
  const unsubscribe = publish
    ? hub.onDecision((d) => {
        const t = tryParseTarget(d.target);
        const set = t?.family === 4 ? publish.v4 : publish.v6;
        if (!t || !set || t.prefix !== (t.family === 4 ? 32 : 128)) return;
        if (waiting.length >= MAX_WAITING) {
          waiting.shift();
          log.warn(
            { target: d.target },
            'vallumd bridge: broker down too long, dropped the oldest waiting decision',
          );
        }
        waiting.push({
          topic: formatTopic(set, d.action === 'ban' ? 'add' : 'del'),
          payload: Buffer.from(t.text),
        });
        void flush();
      })
    : () => {};
  for (const base of cfg.intake) {
    await bus.subscribe(`${base}/#`, (topic, payload) => {
      const t = parseTopic(topic);
      if (!t || t.action !== 'add') return;
      const p = parsePayload(payload);
      if (p.kind !== 'address') {
        if (p.kind === 'invalid')
          log.warn({ topic, payload: p.shown, why: p.why }, 'vallumd intake: refused payload');
        return;
      }
      const body = {
        target: p.target.text,
        rule: 'vallumd',
        reason: `vallumd message on ${t.set}/add`,
        ...(cfg.set ? { set: cfg.set } : {}),
      };
      hub.core
        .report(cfg.node, body)
        .then((r) => {
          if (r.result === 'refused')
            log.warn({ target: p.target.text, reason: r.reason }, 'vallumd intake: refused by policy');
        })
        .catch((err: Error) => log.error({ err: err.message }, 'vallumd intake: report failed'));
    });
  }
  await bus
    .connect()
    .catch((err: Error) =>
      log.error({ err: err.message }, 'vallumd bridge: broker not reachable yet; retrying'),
    );
  return {
    pending: () => waiting.length,
    async close() {
      unsubscribe();
      await bus.close();
    },
  };
}
