import { clip, isSingleHost, tryParseTarget } from '../../core/address.js';
import type { Logger } from '../../core/logger.js';
import { ReplayCache } from '../../trust/replay-cache.js';
import type { BridgeDirection, FleetBridge } from '../fleet-bridge.js';
import type { CompatMetrics } from '../metrics.js';
import { AmqpLink } from './amqp.js';
import { clientQueue, type Net2banConfig, type Peer } from './config.js';
import { openBody, sealBody, sessionKey } from './crypto.js';
import { runAction, writeActionFile } from './exec.js';
import { encodeCommand, type Net2banCommand, parseCommand } from './message.js';

export const TOOL = 'net2ban';

export interface DaemonOptions {
  config: Net2banConfig;
  /** Client mode: where action files live (default: `actions/` beside net2ban.cfg). */
  actionsDir: string;
  log: Logger;
  metrics: CompatMetrics;
  /** Every command accepted (after it was forwarded or applied): tests, the fleet bridge. */
  onCommand?: (c: Net2banCommand, outcome: 'forwarded' | 'applied' | 'failed') => void;
  /**
   * Server only. `to-fleet`: `exec FILE actionban ip=X` also becomes a fleet report. `from-fleet`:
   * each fleet decision for one address is sent to every client as `exec ACTIONFILE
   * actionban|actionunban ip=X`.
   */
  bridge?: { fleet: FleetBridge; direction: BridgeDirection; actionFile: string; bantime?: number };
}

/** A peer's keys, derived once (PBKDF2 is deliberately slow). */
interface Keyed {
  peer: Peer;
  key: Buffer;
}

function keyed(peer: Peer): Keyed {
  return { peer, key: sessionKey(peer.key, peer.secret, peer.rounds) };
}

/**
 * Opens one body with a peer's keys and checks the command inside; every refusal is one log
 * line with its reason and one counter increment, and the daemon goes on with the next message.
 * A body seen before (same HMAC) inside the time window is a replay and is refused.
 */
function openCommand(
  body: Buffer,
  k: Keyed,
  replay: ReplayCache,
  o: DaemonOptions,
  role: string,
): { command: Net2banCommand; plain: Buffer } | undefined {
  const drop = (reason: string, detail?: string) => {
    o.metrics.dropped.inc({ tool: TOOL, reason });
    o.log.warn({ reason, detail, bytes: body.length }, `net2ban ${role}: message dropped`);
    return undefined;
  };
  const opened = openBody(body, k.key, k.peer.authKey);
  if (!opened.ok) return drop(opened.reason);
  const parsed = parseCommand(opened.plain, { validWtime: k.peer.validWtime });
  if (!parsed.ok) return drop(parsed.reason, clip(parsed.detail));
  const now = Date.now();
  const id = body.subarray(body.length - 64).toString('ascii');
  if (!replay.check(id, now + k.peer.validWtime * 1000, now)) return drop('replay');
  return { command: parsed.command, plain: opened.plain };
}

/**
 * The net2ban server: reads `[server] input`, opens each command with the server's key, and
 * forwards the same plaintext re-encrypted for each client into its own durable queue
 * (`queue_prefix + name`) as a persistent message; the input message is acknowledged only once
 * the broker confirmed every copy. `update` goes to the client it names (the original sent it
 * to every client whatever the name); an unknown client is refused.
 */
export function startServer(o: DaemonOptions): { link: AmqpLink; close(): Promise<void> } {
  const s = o.config.server;
  if (!s) throw new Error('server mode needs a [server] section');
  const self = keyed(s.peer);
  const clients = o.config.clients.map(keyed);
  const replay = new ReplayCache();
  const link: AmqpLink = new AmqpLink({
    broker: o.config.broker,
    log: o.log,
    queues: clients.map((c) => clientQueue(o.config, c.peer.name)),
    consume: {
      queue: s.input,
      onMessage: async (body) => {
        const got = openCommand(body, self, replay, o, 'server');
        if (!got) return;
        const { command, plain } = got;
        const targets =
          command.cmd === 'update' ? clients.filter((c) => c.peer.name === command.client) : clients;
        if (command.cmd === 'update' && targets.length === 0) {
          o.metrics.dropped.inc({ tool: TOOL, reason: 'unknown-client' });
          o.log.warn(
            { client: clip(command.client) },
            'net2ban server: update for an unknown client dropped',
          );
          return;
        }
        await forward(plain, targets);
        o.log.info(
          { cmd: command.cmd, file: command.file, clients: targets.length },
          'net2ban server: forwarded',
        );
        o.onCommand?.(command, 'forwarded');
        const b = o.bridge;
        const ip =
          command.cmd === 'exec' && command.action === 'actionban'
            ? tryParseTarget(command.params.ip ?? '')
            : null;
        if (b && b.direction !== 'from-fleet' && ip) {
          await b.fleet.report(
            ip,
            `net2ban/${command.file}`,
            `net2banctl exec ${command.file}`,
            b.bantime ?? 600,
          );
        }
      },
    },
  });
  const forward = async (plain: Buffer, targets: Keyed[]) => {
    for (const c of targets)
      await link.publish(clientQueue(o.config, c.peer.name), sealBody(plain, c.key, c.peer.authKey));
    o.metrics.handled.inc({ tool: TOOL, what: 'forwarded' });
  };
  link.start();
  const b = o.bridge;
  if (b && b.direction !== 'to-fleet') {
    b.fleet.follow(async (d) => {
      const t = tryParseTarget(d.target);
      if (!t || !isSingleHost(t)) return;
      const action = d.action === 'ban' ? 'actionban' : 'actionunban';
      const cmd: Net2banCommand = {
        cmd: 'exec',
        file: b.actionFile,
        action,
        params: { ip: t.text },
        timestamp: Date.now() / 1000,
      };
      await forward(encodeCommand(cmd), clients);
      o.log.info({ action, ip: t.text, seq: d.seq }, 'net2ban server: fleet decision sent to the clients');
    });
  }
  return {
    link,
    async close() {
      await b?.fleet.close();
      await link.close();
    },
  };
}

/**
 * The net2ban client: reads its own queue, in order, one message at a time; `exec` runs the
 * action file's lines without a shell ever seeing the values as code, `update` writes the
 * action file. A message is acknowledged once handled, so a client stopped mid-way gets it again.
 */
export function startClient(o: DaemonOptions): { link: AmqpLink; close(): Promise<void> } {
  const me = keyed(o.config.clients[0]!);
  const replay = new ReplayCache();
  const link = new AmqpLink({
    broker: o.config.broker,
    log: o.log,
    queues: [],
    consume: {
      queue: clientQueue(o.config, me.peer.name),
      onMessage: async (body) => {
        const got = openCommand(body, me, replay, o, 'client');
        if (!got) return;
        const c = got.command;
        try {
          if (c.cmd === 'update') {
            const path = writeActionFile(o.actionsDir, c.file, Buffer.from(c.content, 'base64'));
            o.log.warn({ file: c.file, path }, 'net2ban client: action file updated');
          } else {
            const r = await runAction(o.actionsDir, c.file, c.action, c.params, o.log);
            if (r.failed > 0) throw new Error(`${r.failed} of ${r.lines} lines failed`);
            o.log.info({ file: c.file, action: c.action, ip: c.params.ip }, 'net2ban client: action run');
          }
          o.metrics.handled.inc({ tool: TOOL, what: c.cmd });
          o.onCommand?.(c, 'applied');
        } catch (err) {
          o.metrics.dropped.inc({ tool: TOOL, reason: 'action-failed' });
          o.log.error({ err: (err as Error).message, file: c.file }, 'net2ban client: command failed');
          o.onCommand?.(c, 'failed');
        }
      },
    },
  });
  link.start();
  return { link, close: () => link.close() };
}
