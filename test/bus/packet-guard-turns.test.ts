import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { guardPacketSize, TURN_BYTES } from '../../src/bus/packet-guard.js';

/** An MQTT PUBLISH-shaped packet: type byte, remaining length (MQTT varint), body. */
function packet(bodyBytes: number, fill: number): Buffer {
  const len: number[] = [];
  let n = bodyBytes;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x30, ...len]), Buffer.alloc(bodyBytes, fill)]);
}

describe('broker connection guard: one connection’s share of a turn', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r) ?? r(undefined));
  });

  /** Accepts one real TCP connection on 127.0.0.1 and hands the guarded stream to `onConn`. */
  async function pair(onConn: (socket: Socket) => void): Promise<Socket> {
    server = createServer(onConn);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = createConnection({ host: '127.0.0.1', port });
    await new Promise((r) => client.once('connect', r));
    return client;
  }

  it('hands the broker at most one turn’s bytes of a flooding connection at a time, losing nothing', async () => {
    const sent = Buffer.concat(Array.from({ length: 400 }, (_, i) => packet(2_000, i & 0xff)));
    const chunks: Buffer[] = [];
    let turn = 0;
    let maxTurn = 0;
    let ticking = true;
    const tick = () => {
      maxTurn = Math.max(maxTurn, turn);
      turn = 0;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const done = new Promise<void>((resolve) => {
      void pair((socket) => {
        const guarded = guardPacketSize(socket, 1024 * 1024, () => undefined);
        guarded.on('data', (c: Buffer) => {
          chunks.push(c);
          turn += c.length;
        });
        guarded.on('end', () => resolve());
      }).then((client) => client.end(sent));
    });
    await done;
    ticking = false;
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
    expect(maxTurn).toBeGreaterThan(0);
    expect(maxTurn).toBeLessThanOrEqual(TURN_BYTES);
  });
});
