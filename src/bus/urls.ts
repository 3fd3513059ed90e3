import { ConfigError } from '../core/errors.js';

/*
 * Bus URLs, without the config schema: the agent builds its transport from a config already
 * validated (in a worker thread, ADR 0039), so this path must not load the schema library.
 */

/** URL schemes per bus type; `url` may list several servers (a cluster) for nats, amqp and mqtt. */
export const SCHEMES = {
  mqtt: /^mqtts?:\/\/[^/\s]+\/?$/,
  nats: /^(nats|tls):\/\/[^/\s]+\/?$/,
  amqp: /^amqps?:\/\/[^\s]+$/,
} as const;
export const URL_HINT = {
  mqtt: 'mqtt://host:port or mqtts://host:port',
  nats: 'nats://host:port or tls://host:port',
  amqp: 'amqp://user:password@host:port/vhost or amqps://...',
} as const;

/** `url` as a list: YAML list items, or one string with servers separated by commas. */
export function busUrls(url: string | string[] | undefined): string[] {
  if (url === undefined) return [];
  return (Array.isArray(url) ? url : url.split(',')).map((u) => u.trim()).filter((u) => u.length > 0);
}

/**
 * `--bus URL[,URL...]`: the type follows from the scheme (mqtt(s), nats/tls, amqp(s)); other
 * keys of the config's `bus:` section (credentials, TLS) are kept.
 */
export function busFromFlag(section: unknown, flag: string): Record<string, unknown> {
  const first = busUrls(flag)[0] ?? '';
  const type = /^mqtts?:/.test(first)
    ? 'mqtt'
    : /^(nats|tls):/.test(first)
      ? 'nats'
      : /^amqps?:/.test(first)
        ? 'amqp'
        : undefined;
  if (!type) throw new ConfigError(`expected ${Object.values(URL_HINT).join(', ')}`, { key: '--bus' });
  const base = section && typeof section === 'object' ? (section as Record<string, unknown>) : {};
  return { ...base, type, url: flag };
}
