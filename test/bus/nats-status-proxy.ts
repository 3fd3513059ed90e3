import { connect, createServer, type Socket } from 'node:net';

/**
 * A relay to a NATS server that reads the server's side of the protocol frame by frame and can
 * swallow the next pull status with a given code: what a client sees when nats-server 2.9.10
 * drops an expiring pull without its 408 (ADR 0069), made to happen on demand.
 */
export interface NatsStatusProxy {
  port: number;
  /** Swallows the next `HMSG` whose status line has `code`; resolves once it did. */
  dropNextStatus(code: number): Promise<void>;
  close(): Promise<void>;
}

const CRLF = Buffer.from('\r\n');

export async function startNatsStatusProxy(targetPort: number): Promise<NatsStatusProxy> {
  const sockets = new Set<Socket>();
  let drop: { code: number; done: () => void } | undefined;
  const server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    inbound.pipe(outbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    let buf = Buffer.alloc(0);
    outbound.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const pass: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf(CRLF);
        if (eol < 0) break;
        const line = buf.subarray(0, eol).toString('latin1');
        // MSG and HMSG end with the payload's size; the payload follows with its own CRLF.
        const sized = /^H?MSG /i.test(line);
        const size = sized ? Number(line.split(' ').at(-1)) : -2;
        const end = eol + 2 + size + 2;
        if (buf.length < end) break;
        const frame = buf.subarray(0, end);
        buf = buf.subarray(end);
        const status = /^HMSG /i.test(line)
          ? /^NATS\/1\.0 (\d{3})/.exec(frame.subarray(eol + 2).toString('latin1'))
          : null;
        if (drop && status && Number(status[1]) === drop.code) {
          const { done } = drop;
          drop = undefined;
          done();
          continue;
        }
        pass.push(frame);
      }
      if (pass.length > 0) inbound.write(Buffer.concat(pass));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    dropNextStatus: (code) =>
      new Promise<void>((done) => {
        drop = { code, done };
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
