import { createRequire } from 'node:module';
import { createConnection, isIP } from 'node:net';
import type { IClientOptions, IStream, MqttClient } from 'mqtt';

/** A broker as mqtt.js's clients take it in `servers`. */
interface Server {
  host: string;
  port: number;
  protocol: 'mqtt' | 'mqtts';
}

/**
 * The mqtt.js client for `mqtt://` and `mqtts://` brokers, built without mqtt.js's `connect()`.
 * That function fills, on its first call, a table of every transport mqtt.js knows: it loads `ws`
 * (and node's `zlib`, `http`, `https`), `socks`, `ip-address` and `smart-buffer`, about 3 MB of an
 * idle agent's memory (ADR 0051) for transports rampart does not offer. The streams opened here
 * are the ones `connect()` opens for these two schemes (its `connect/tcp.js` and `connect/tls.js`),
 * servers tried in turn as it does.
 *
 * Undefined when `connect()` must decide: credentials or a query in a URL, another scheme, or a
 * SOCKS proxy from `MQTTJS_SOCKS_PROXY` (mqtt.js's own variable).
 */
export function clientWithoutConnect(
  Client: typeof MqttClient,
  urls: string[],
  options: IClientOptions,
): MqttClient | undefined {
  if (process.env.MQTTJS_SOCKS_PROXY) return undefined;
  const servers: Server[] = [];
  for (const u of urls) {
    const s = plainServer(u);
    if (!s) return undefined;
    servers.push(s);
  }
  const first = servers[0]!;
  const opts: IClientOptions = { ...options, host: first.host, port: first.port, protocol: first.protocol };
  // connect() switches a plain URL to TLS when a client certificate and key are given.
  if (opts.cert && opts.key && opts.protocol === 'mqtt') opts.protocol = 'mqtts';
  const defaultProtocol = opts.protocol;
  let next = 0;
  const build = (client: MqttClient, o: IClientOptions = opts): IStream => {
    if (o.servers) {
      // The next broker at each attempt, back to the first after the last (connect()'s order).
      if (next >= o.servers.length) next = 0;
      const s = o.servers[next++]!;
      o.host = s.host;
      o.port = s.port;
      o.protocol = s.protocol ?? defaultProtocol;
      o.hostname = s.host;
    }
    return o.protocol === 'mqtts' ? tlsStream(client, o) : tcpStream(o);
  };
  const client = new Client(build, opts);
  // connect() adds this listener too: an error without another listener must not throw.
  client.on('error', () => {});
  return client;
}

/** `mqtt://host:port` or `mqtts://host:port` and nothing else; undefined otherwise. */
function plainServer(url: string): Server | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') return undefined;
  if (u.username || u.password || u.search || (u.pathname !== '' && u.pathname !== '/')) return undefined;
  const protocol = u.protocol === 'mqtts:' ? 'mqtts' : 'mqtt';
  return {
    // WHATWG URLs keep an IPv6 host's brackets; sockets take the bare address.
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost',
    port: u.port ? Number(u.port) : protocol === 'mqtts' ? 8883 : 1883,
    protocol,
  };
}

/**
 * Nagle off: with it, a small packet written while the previous one is unacknowledged (an ack then
 * a publish, back to back) waits for the broker's delayed ACK, up to 40 ms. 20 agents on Mosquitto
 * had a quarter of their propagation samples over 38 ms, the slowest 85 (NATS's client already
 * turns it off).
 */
function tcpStream(o: IClientOptions): IStream {
  return createConnection({ port: o.port ?? 1883, host: o.hostname ?? o.host ?? 'localhost', noDelay: true });
}

/**
 * As mqtt.js's TLS stream: the server name from a host name, certificates checked unless
 * `rejectUnauthorized: false`, and a handshake failure reported on the client (then the socket
 * ends, and the client's own reconnect logic takes over).
 */
function tlsStream(client: MqttClient, o: IClientOptions): IStream {
  // node:tls only once a broker needs it: a plain mqtt:// agent never loads it.
  const { connect } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  const host = o.hostname ?? o.host ?? 'localhost';
  const rejectUnauthorized = o.rejectUnauthorized !== false;
  const { path: _path, ...rest } = o as IClientOptions & { path?: string };
  const socket = connect({
    ...(rest as object),
    host,
    port: o.port ?? 8883,
    ...(isIP(host) === 0 && !o.servername ? { servername: host } : {}),
    rejectUnauthorized,
  });
  socket.setNoDelay(true);
  const onError = (err: Error) => {
    if (rejectUnauthorized) client.emit('error', err);
    socket.end();
  };
  socket.on('secureConnect', () => {
    if (rejectUnauthorized && !socket.authorized) socket.emit('error', new Error('TLS not authorized'));
    else socket.removeListener('error', onError);
  });
  socket.on('error', onError);
  return socket;
}
