import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../../core/errors.js';
import { fsReason } from '../../core/fs-error.js';
import { Fail2banConfig, parseFail2banIni } from '../fail2ban-ini.js';

/** Where the original looked (the working directory), then where packages put it. */
export const CLUSTER_CONFIG_PATHS = ['fail2ban-cluster.conf', '/etc/fail2ban-cluster.conf'];

export interface MonitorConfig {
  replyServer: string;
  logPath: string;
  auth: boolean;
  token: string;
  /** rampart: where undelivered messages wait (default: in the data folder). */
  spool?: string;
}

export interface PublisherConfig {
  broadcastUrl: string;
  replyUrl: string;
  auth: boolean;
  token: string;
  /** rampart: frames longer than this get NAK (default 1024; see frame.ts MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
}

export type SubscriberAction = 'log' | 'fail2banclient' | 'firewall';

export interface SubscriberConfig {
  publisherUrl: string;
  action: SubscriberAction;
  /** rampart: send every ban to this fail2ban jail instead of the message's own jail. */
  jail?: string;
  /** rampart: ban length in seconds for `subscriberaction = firewall` (default 600, fail2ban's). */
  bantime: number;
}

export type Warn = (message: string) => void;

/**
 * Reads fail2ban-cluster.conf the way the original did (Python's configparser with its
 * defaults): `key = value` or `key: value`, full-line `#`/`;` comments, `%(name)s` interpolation,
 * and NO inline comments — `authtoken = s3cret # mine` is the token `s3cret # mine` on both ends
 * of an original pair, so it must stay that here too.
 */
export function loadClusterConfig(path?: string): Fail2banConfig {
  const file = path ?? CLUSTER_CONFIG_PATHS.find((p) => existsSync(p));
  if (!file) {
    throw new ConfigError(`no fail2ban-cluster.conf found (looked in ${CLUSTER_CONFIG_PATHS.join(', ')})`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read: ${fsReason(err)}`, { file }, { cause: err });
  }
  return new Fail2banConfig([parseFail2banIni(text, file, { inlineComments: false })]);
}

function need(cfg: Fail2banConfig, section: string, key: string): string {
  if (!cfg.hasSection(section)) throw new ConfigError(`no [${section}] section`, { file: cfg.files[0] });
  const v = cfg.get(section, key);
  if (v === undefined) throw new ConfigError(`[${section}] needs "${key}"`, { file: cfg.files[0], key });
  return v;
}

/**
 * A ZeroMQ endpoint has no spaces, so text after the first blank is an inline comment the
 * original would have passed to zmq (which refuses it: the shipped example file cannot bind).
 * rampart drops it and says so.
 */
function endpoint(cfg: Fail2banConfig, section: string, key: string, warn: Warn): string {
  const raw = need(cfg, section, key);
  const url = raw.split(/\s/, 1)[0]!;
  if (url !== raw) {
    const at = cfg.raw(section, key);
    warn(`${at?.file}:${at?.line}: ${key}: ignoring the text after "${url}" (the original would fail on it)`);
  }
  if (!/^(tcp|ipc|inproc|pgm|epgm|udp):\/\/\S+$/.test(url)) {
    const at = cfg.raw(section, key);
    throw new ConfigError(`"${url}" is not a ZeroMQ endpoint such as tcp://host:5678`, {
      file: at?.file,
      line: at?.line,
      key,
    });
  }
  return url;
}

/** The original compares `auth == "true"` exactly; anything else, even `True`, means off. */
function auth(cfg: Fail2banConfig, section: string, warn: Warn): boolean {
  const v = need(cfg, section, 'auth');
  if (v === 'true') return true;
  if (/^(true|yes|on|1)\b/i.test(v)) {
    const at = cfg.raw(section, 'auth');
    warn(
      `${at?.file}:${at?.line}: auth: "${v}" is not exactly "true", so authentication is OFF (as in the original)`,
    );
  }
  return false;
}

export function monitorConfig(cfg: Fail2banConfig, warn: Warn = () => {}): MonitorConfig {
  const on = auth(cfg, 'monitor', warn);
  return {
    replyServer: endpoint(cfg, 'monitor', 'zmqreplyserver', warn),
    logPath: need(cfg, 'monitor', 'fail2banlogpath'),
    auth: on,
    token: on ? need(cfg, 'monitor', 'authtoken') : (cfg.get('monitor', 'authtoken') ?? ''),
    spool: cfg.get('monitor', 'spool'),
  };
}

export function publisherConfig(cfg: Fail2banConfig, warn: Warn = () => {}): PublisherConfig {
  const on = auth(cfg, 'publisher', warn);
  return {
    broadcastUrl: endpoint(cfg, 'publisher', 'broadcasterbindurl', warn),
    replyUrl: endpoint(cfg, 'publisher', 'replybindurl', warn),
    auth: on,
    token: on ? need(cfg, 'publisher', 'authtoken') : '',
    maxFrameBytes: maxFrame(cfg),
  };
}

function maxFrame(cfg: Fail2banConfig): number | undefined {
  const v = cfg.get('publisher', 'maxframebytes');
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v) || Number(v) < 16) {
    const at = cfg.raw('publisher', 'maxframebytes');
    throw new ConfigError('must be a number of bytes, at least 16', {
      file: at?.file,
      line: at?.line,
      key: 'maxframebytes',
    });
  }
  return Number(v);
}

export function subscriberConfig(cfg: Fail2banConfig, warn: Warn = () => {}): SubscriberConfig {
  const raw = cfg.get('subscriber', 'subscriberaction') ?? 'log';
  const action = raw.split(/\s/, 1)[0]!.toLowerCase();
  const at = (key: string) => {
    const e = cfg.raw('subscriber', key);
    return { file: e?.file ?? cfg.files[0], line: e?.line, key };
  };
  if (action !== 'log' && action !== 'fail2banclient' && action !== 'firewall') {
    throw new ConfigError(`"${raw}" is not one of log, fail2banclient, firewall`, at('subscriberaction'));
  }
  const bantimeText = cfg.get('subscriber', 'bantime') ?? '600';
  if (!/^\d{1,9}$/.test(bantimeText)) throw new ConfigError('bantime must be whole seconds', at('bantime'));
  const jail = cfg.get('subscriber', 'jail');
  if (jail !== undefined && !/^[\w.@+-]{1,100}$/.test(jail)) {
    throw new ConfigError(`"${jail}" is not a fail2ban jail name`, at('jail'));
  }
  return {
    publisherUrl: endpoint(cfg, 'subscriber', 'zmqpublisherurl', warn),
    action,
    jail,
    bantime: Number(bantimeText),
  };
}
