/**
 * Every error rampart raises on purpose carries a stable `code`, so scripts, tests and the API can
 * tell failures apart without parsing messages. Low-level causes are kept in `cause`.
 */
export class RampartError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RampartError';
    this.code = code;
  }
}

/** An operator's mistake in a file: names the file, the line and the key. */
export class ConfigError extends RampartError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly key: string | undefined;
  constructor(
    message: string,
    where: { file?: string; line?: number; key?: string } = {},
    options?: { cause?: unknown },
  ) {
    const loc = [where.file, where.line].filter((x) => x !== undefined).join(':');
    const key = where.key ? `${where.key}: ` : '';
    super('E_CONFIG', `${loc ? `${loc}: ` : ''}${key}${message}`, options);
    this.name = 'ConfigError';
    this.file = where.file;
    this.line = where.line;
    this.key = where.key;
  }
}

/** Documented error codes; a test checks every code used in src/ is listed here. */
export const ERROR_CODES = {
  E_CONFIG: 'a configuration, rule or filter file is invalid',
  E_ADDRESS: 'text is not a valid IPv4/IPv6 address or CIDR range',
  E_UNBANNABLE: 'the target must never be banned (loopback, unspecified, too broad, allowlisted)',
  E_SET_NAME: 'a set name breaks the rule every firewall backend accepts (core/set-name.ts)',
  E_PROTECTED:
    'the ban would cover the hub, its broker, this machine or an enrolled node (use force to override where allowed)',
  E_DURATION: 'a duration is not of the form 90s, 10m, 12h, 1d, 1w or permanent',
  E_USAGE: 'command-line arguments are wrong',
  E_REGEX: 'a user-supplied pattern is invalid or unsafe',
  E_SOURCE: 'a log source could not be opened or read',
  E_FIREWALL: 'a firewall backend failed to apply or read a batch',
  E_STORE: 'the decision store failed',
  E_BUS: 'the message bus failed',
  E_AUTH: 'a credential, key or signature was refused',
  E_HTTP: 'an HTTP API call failed',
  E_RATE: 'the caller is held for a while: too many of its messages were refused (HTTP 429, see Retry-After)',
  E_LOCKED: 'the data folder is in use by another rampart process of the same role',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
