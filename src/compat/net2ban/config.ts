import { ConfigError } from '../../core/errors.js';
import { type Fail2banConfig, readFail2banConfig } from '../fail2ban-ini.js';

/** Where the original kept everything. */
export const DEFAULT_NET2BAN_CONFIG = '/usr/share/net2ban/net2ban.cfg';

/** One end of an encrypted link: the values its session key and HMAC come from. */
export interface Peer {
  name: string;
  key: string;
  secret: string;
  rounds: number;
  validWtime: number;
  authKey: string;
}

export interface Broker {
  host: string;
  port: number;
  vhost: string;
  user: string;
  password: string;
  /** TLS (`amqps = true`), with an optional CA file (`cafile`). */
  tls: boolean;
  caFile?: string;
}

export interface Net2banConfig {
  file: string;
  mode: 'server' | 'client';
  broker: Broker;
  /** Lower-cased, as the original did. */
  queuePrefix: string;
  /** `[server]`: its input queue and the key net2banctl encrypts with (server mode and net2banctl). */
  server?: { input: string; peer: Peer };
  /** Every client section (server mode), or the one this client is (client mode). */
  clients: Peer[];
  keylen: number;
  raw: Fail2banConfig;
}

const RESERVED = new Set(['global', 'server', 'keygen', 'DEFAULT']);

/**
 * Reads net2ban.cfg as it is (Python 2 ConfigParser: `;` inline comments after a blank,
 * `%(name)s` interpolation). Per-peer `rounds`, `secret`, `valid_wtime`, `authkey` override
 * `[global]`. Differences from the original, all in the operator's favour: the shipped example's
 * `auth_key` is read as `authkey` (the original crashed on it); a client's overrides fall back to
 * `[global]` only (the original let one client's, or `[server]`'s, leak into the next); `[global]`
 * gains optional `port`, `vhost`, `user`, `password`, `amqps`, `cafile` (defaults 5672, `/`,
 * guest/guest, as the original's pika connection had).
 */
export function loadNet2banConfig(path = DEFAULT_NET2BAN_CONFIG): Net2banConfig {
  const cfg = readFail2banConfig(path);
  const file = cfg.files[0] ?? path;
  const where = (section: string, key: string) => {
    const e = cfg.raw(section, key);
    return { file: e?.file ?? file, line: e?.line, key };
  };
  const get = (section: string, key: string): string | undefined => {
    if (!cfg.hasSection(section)) return undefined;
    const v = cfg.get(section, key);
    if (v !== undefined || key !== 'authkey') return v;
    return cfg.get(section, 'auth_key');
  };
  const need = (section: string, key: string): string => {
    const v = get(section, key);
    if (v === undefined) throw new ConfigError(`[${section}] needs "${key}"`, where(section, key));
    return v;
  };
  const int = (section: string, key: string, text: string, min: number): number => {
    if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < min) {
      throw new ConfigError(`"${text}" must be a whole number ≥ ${min}`, where(section, key));
    }
    return Number(text);
  };
  if (!cfg.hasSection('global')) throw new ConfigError('no [global] section', { file });
  const peer = (section: string, fallback: string[]): Peer => {
    const pick = (key: string) => {
      for (const s of [section, ...fallback]) {
        const v = get(s, key);
        if (v !== undefined) return { v, s };
      }
      return undefined;
    };
    const required = (key: string) => {
      const r = pick(key);
      if (!r) throw new ConfigError(`[${section}] or [global] needs "${key}"`, where(section, key));
      return r;
    };
    const rounds = required('rounds');
    const wtime = pick('valid_wtime');
    return {
      name: section,
      key: need(section, 'key'),
      secret: required('secret').v,
      rounds: int(rounds.s, 'rounds', rounds.v, 1),
      // Absent in the original meant "no check"; rampart keeps the shipped default instead.
      validWtime: wtime ? int(wtime.s, 'valid_wtime', wtime.v, 1) : 3600,
      authKey: required('authkey').v,
    };
  };
  const mode = (get('global', 'mode') ?? 'client').trim().toLowerCase();
  if (mode !== 'server' && mode !== 'client') {
    throw new ConfigError(`mode must be server or client, not "${mode}"`, where('global', 'mode'));
  }
  const port = get('global', 'port');
  const tls = get('global', 'amqps');
  if (tls !== undefined && !/^(true|false|yes|no|1|0|on|off)$/i.test(tls.trim())) {
    throw new ConfigError('amqps must be true or false', where('global', 'amqps'));
  }
  const broker: Broker = {
    host: need('global', 'server').trim(),
    port: port === undefined ? 5672 : int('global', 'port', port, 1),
    vhost: get('global', 'vhost') ?? '/',
    user: get('global', 'user') ?? 'guest',
    password: get('global', 'password') ?? 'guest',
    tls: tls !== undefined && /^(true|yes|1|on)$/i.test(tls.trim()),
    caFile: get('global', 'cafile'),
  };
  if (broker.port > 65535) throw new ConfigError('port must be 1 to 65535', where('global', 'port'));
  const names = cfg.sections().filter((s) => !RESERVED.has(s));
  const clients = names.map((n) => peer(n, ['global']));
  if (mode === 'client' && clients.length !== 1) {
    throw new ConfigError(
      `a client's configuration has exactly one client section (found ${clients.length}: ${names.join(', ') || 'none'})`,
      { file },
    );
  }
  const keylenText = get('keygen', 'keylen');
  return {
    file,
    mode,
    broker,
    queuePrefix: (get('global', 'queue_prefix') ?? 'net2ban_').toLowerCase(),
    server: cfg.hasSection('server')
      ? { input: need('server', 'input').toLowerCase(), peer: peer('server', ['global']) }
      : undefined,
    clients,
    keylen: keylenText === undefined ? 40 : int('keygen', 'keylen', keylenText, 2),
    raw: cfg,
  };
}

/** The queue a client reads: `queue_prefix` (lower-cased) + the section name as written. */
export function clientQueue(cfg: Net2banConfig, client: string): string {
  return cfg.queuePrefix + client;
}
