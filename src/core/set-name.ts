import { RampartError } from './errors.js';

/**
 * The one rule for a logical set name, at every entry (API, reports, config, rule files, compat
 * inputs, and again at the agent). Tested against the real tools: `nft` refuses a set name that
 * starts with a digit or `-` (`1x`), and ipset names are at most 31 bytes, of which rampart's
 * longest kernel suffix (`-net-v6`, `_v4_net`) takes 7. So: a letter or `_`, then letters,
 * digits, `_` or `-`, 24 characters at most; both backends accept every name this allows.
 */
export const SET_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,23}$/;

export const SET_NAME_RULE = 'a letter or _, then up to 23 letters, digits, _ or -';

/** The last name that passed: an agent checks every decision's set, nearly always the same one. */
let lastGood: string | undefined;

export function isSetName(name: unknown): name is string {
  if (name === lastGood) return true;
  if (typeof name !== 'string' || !SET_NAME_RE.test(name)) return false;
  lastGood = name;
  return true;
}

/** Returns the name, or throws E_SET_NAME naming where it came from. */
export function assertSetName(name: unknown, where = 'set'): string {
  if (isSetName(name)) return name;
  const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 40)) : typeof name;
  throw new RampartError('E_SET_NAME', `${where}: ${shown} is not a valid set name (${SET_NAME_RULE})`);
}
