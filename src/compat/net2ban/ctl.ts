import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'amqplib';
import { RampartError } from '../../core/errors.js';
import { fsReason } from '../../core/fs-error.js';
import type { Net2banConfig } from './config.js';
import { sealBody, sessionKey } from './crypto.js';
import { actionFileName, encodeCommand, type Net2banCommand, updatePayload } from './message.js';

/** `exec FILE ACTION k=v...`: each argument split at its first `=` (the original took only the part up to a second one). */
export function execCommand(file: string, action: string, kv: string[], now = Date.now()): Net2banCommand {
  const params: Record<string, string> = {};
  for (const a of kv) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new RampartError('E_USAGE', `"${a}" is not NAME=VALUE`);
    params[a.slice(0, eq)] = a.slice(eq + 1);
  }
  if (actionFileName(file) !== file) {
    throw new RampartError(
      'E_USAGE',
      `"${file}" is not an action file name (letters, digits, _ and -, no path)`,
    );
  }
  return { cmd: 'exec', file, action, params, timestamp: now / 1000 };
}

/** `update CLIENT FILE`: the action file, comments stripped, for one client. */
export function updateCommand(client: string, path: string, now = Date.now()): Net2banCommand {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RampartError('E_USAGE', `${path}: cannot read: ${fsReason(err)}`, { cause: err });
  }
  const { file, content } = updatePayload(path, text);
  if (!actionFileName(file))
    throw new RampartError('E_USAGE', `${path}: "${file}" is not a usable action name`);
  return { cmd: 'update', file, content, client, timestamp: now / 1000 };
}

/** Encrypts a command with `[server] key` and puts it in the server's input queue (persistent). */
export async function sendToServer(cfg: Net2banConfig, command: Net2banCommand): Promise<void> {
  const s = cfg.server;
  if (!s)
    throw new RampartError('E_CONFIG', `${cfg.file}: no [server] section (net2banctl runs on the server)`);
  const body = sealBody(
    encodeCommand(command),
    sessionKey(s.peer.key, s.peer.secret, s.peer.rounds),
    s.peer.authKey,
  );
  const b = cfg.broker;
  let conn: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    conn = await connect({
      protocol: b.tls ? 'amqps' : 'amqp',
      hostname: b.host,
      port: b.port,
      username: b.user,
      password: b.password,
      vhost: b.vhost,
    });
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(s.input, { durable: true });
    ch.sendToQueue(s.input, body, { persistent: true });
    await ch.waitForConfirms();
  } catch (err) {
    throw new RampartError(
      'E_BUS',
      `cannot deliver to ${b.host}:${b.port} queue ${s.input}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    await conn?.close().catch(() => {});
  }
}

export function genRandom(cfg: Net2banConfig): string {
  return randomBytes(Math.floor(cfg.keylen / 2)).toString('hex');
}

export function listClients(cfg: Net2banConfig): string[] {
  return cfg.clients.map((c) => c.name);
}

/** What the original printed: `[global]`, `[keygen]` and the client's section, `mode = client`. */
export function getClient(cfg: Net2banConfig, name: string): string | undefined {
  if (!cfg.clients.some((c) => c.name === name)) return undefined;
  let out = '';
  for (const section of ['global', 'keygen', name]) {
    if (!cfg.raw.hasSection(section)) continue;
    out += `[${section}]\n`;
    for (const key of cfg.raw.keys(section)) {
      out += key === 'mode' ? 'mode = client\n' : `${key} = ${cfg.raw.get(section, key)}\n`;
    }
    out += '\n';
  }
  return out;
}
