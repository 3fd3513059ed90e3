import { RampartError } from './errors.js';

/** `HOST:PORT`, `[V6]:PORT` or `PORT` (on 127.0.0.1); E_USAGE naming `what` otherwise. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new RampartError('E_USAGE', `${what}: "${text}" is not HOST:PORT`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}
