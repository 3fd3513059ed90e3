import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { EventEmitter } from 'node:events';
import { type AddressInfo, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { ConfigError, RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { LogLine } from '../detect/types.js';
import { decodeUtf8 } from './line-splitter.js';
import { SyslogFrameDecoder } from './syslog-framing.js';
import { parseSyslog } from './syslog-parse.js';
import type { Source } from './types.js';
import { UnixDgramReceiver } from './unix-dgram.js';

/** Default cap on one syslog message; longer ones are cut (rsyslog's own default is 8 KiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export interface SyslogSourceOptions {
  /** UDP listener (RFC 5426); port 0 picks a free port (see `addresses()`). */
  udp?: { host?: string; port: number };
  /** TCP listener; newline and octet-counted framing are detected per frame. */
  tcp?: { host?: string; port: number; maxConnections?: number };
  /** UNIX datagram socket (rsyslog omuxsock, syslog-ng unix-dgram, banban): created, removed on stop. */
  unix?: { path: string; mode?: number };
  maxMessageBytes?: number;
  logger?: Logger;
  name?: string;
}

/**
 * A syslog listener. Each message becomes one LogLine in the traditional file form (`<PRI>`
 * removed, RFC 5424 converted, `time` set when the message carries a full timestamp), with
 * `source` `syslog:udp`, `syslog:tcp` or `syslog:unix`.
 */
export class SyslogSource implements Source {
  readonly name: string;
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private unix: UnixDgramReceiver | undefined;
  private readonly conns = new Set<Socket>();
  private readonly log: Logger;
  private readonly max: number;
  /** Messages cut at the size cap. */
  truncated = 0;

  constructor(private readonly o: SyslogSourceOptions) {
    if (!o.udp && !o.tcp && !o.unix)
      throw new ConfigError('give at least one of udp, tcp, unix', { key: 'syslog' });
    this.name = o.name ?? 'syslog';
    this.log = o.logger ?? silentLogger();
    this.max = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async start(onLine: (line: LogLine) => void): Promise<void> {
    const deliver = (bytes: Buffer, truncated: boolean, source: string, peer: string) => {
      if (truncated) {
        this.truncated++;
        this.log.warn({ source, peer, maxMessageBytes: this.max }, 'syslog message longer than the cap: cut');
      }
      const m = parseSyslog(decodeUtf8(bytes), peer);
      onLine({ text: m.text, source, time: m.time });
    };
    try {
      if (this.o.udp) await this.startUdp(this.o.udp, deliver);
      if (this.o.tcp) await this.startTcp(this.o.tcp, deliver);
      if (this.o.unix) {
        const local = hostname();
        const path = this.o.unix.path;
        this.unix = new UnixDgramReceiver({
          path,
          mode: this.o.unix.mode,
          maxBytes: this.max,
          onUnexpectedExit: (why) => this.log.error({ path, why }, 'syslog unix socket listener stopped'),
        });
        await this.unix.start((b) => deliver(b, false, 'syslog:unix', local));
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Where the network listeners are bound (useful with port 0). */
  addresses(): { udp?: AddressInfo; tcp?: AddressInfo } {
    return {
      udp: this.udp?.address(),
      tcp: (this.tcp?.address() as AddressInfo | null) ?? undefined,
    };
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    const tcp = this.tcp;
    this.tcp = undefined;
    if (tcp) {
      const closed = new Promise<void>((r) => tcp.close(() => r()));
      for (const c of this.conns) c.destroy();
      this.conns.clear();
      await closed;
    }
    const unix = this.unix;
    this.unix = undefined;
    await unix?.stop();
  }

  private startUdp(
    o: { host?: string; port: number },
    deliver: (b: Buffer, t: boolean, s: string, peer: string) => void,
  ): Promise<void> {
    const host = o.host ?? '127.0.0.1';
    const sock = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    this.udp = sock;
    sock.on('message', (msg, rinfo) => {
      deliver(msg.subarray(0, this.max), msg.length > this.max, 'syslog:udp', peerName(rinfo.address));
    });
    return this.bound(sock, 'udp', host, o.port, (done) => sock.bind(o.port, host, done));
  }

  private startTcp(
    o: { host?: string; port: number; maxConnections?: number },
    deliver: (b: Buffer, t: boolean, s: string, peer: string) => void,
  ): Promise<void> {
    const host = o.host ?? '127.0.0.1';
    const server = createServer((conn) => {
      this.conns.add(conn);
      const peer = peerName(conn.remoteAddress ?? 'unknown');
      const decoder = new SyslogFrameDecoder(this.max, (frame, truncated) =>
        deliver(frame, truncated, 'syslog:tcp', peer),
      );
      conn.on('data', (chunk: Buffer) => decoder.push(chunk));
      conn.on('end', () => {
        decoder.end();
        conn.end();
      });
      conn.on('error', (err) => this.log.debug({ peer, err: String(err) }, 'syslog tcp connection error'));
      conn.on('close', () => this.conns.delete(conn));
    });
    server.maxConnections = o.maxConnections ?? 1000;
    this.tcp = server;
    return this.bound(server, 'tcp', host, o.port, (done) => server.listen(o.port, host, done));
  }

  /** Resolves once bound; a bind error rejects as one clear line, later errors are logged. */
  private bound(
    target: EventEmitter,
    proto: string,
    host: string,
    port: number,
    listen: (done: () => void) => void,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      target.once('error', (err: Error) => reject(listenError(proto, host, port, err)));
      listen(() => {
        target.removeAllListeners('error');
        target.on('error', (err: Error) =>
          this.log.error({ err: String(err) }, `syslog ${proto} socket error`),
        );
        resolve();
      });
    });
  }
}

function peerName(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function listenError(proto: string, host: string, port: number, err: Error): RampartError {
  const code = (err as NodeJS.ErrnoException).code ?? err.message;
  return new RampartError('E_SOURCE', `syslog ${proto} ${host}:${port}: cannot listen (${code})`, {
    cause: err,
  });
}
