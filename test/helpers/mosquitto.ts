import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from './certs.js';
import { freePort } from './free-port.js';

export interface PrivateMosquitto {
  /** Plain listener: username/password required. */
  port: number;
  /** TLS listener: a client certificate signed by `pki.ca` required, and the same password. */
  tlsPort: number;
  username: string;
  password: string;
  pki: TestPki;
  /** Stops it (SIGTERM, which saves its state, as a service restart does) and starts it again on the same ports. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a Mosquitto 2 of the test's own, with generated config, password file and certificates. */
export async function startMosquitto(): Promise<PrivateMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-mosq-'));
  const pki = makeTestPki(dir);
  const [port, tlsPort] = [await freePort(), await freePort()];
  const username = 'rampart-test';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  execFileSync('mosquitto_passwd', ['-b', '-c', join(dir, 'passwd'), username, password], {
    stdio: 'ignore',
  });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      'allow_anonymous false',
      `password_file ${join(dir, 'passwd')}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      // What docs/config.md asks operators for: Nagle off on the broker's side too.
      'set_tcp_nodelay true',
      'user root',
      `listener ${port} 127.0.0.1`,
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${pki.ca}`,
      `certfile ${pki.serverCert}`,
      `keyfile ${pki.serverKey}`,
      'require_certificate true',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const c = child;
    // Ready when the plain listener accepts a connection.
    for (;;) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited ${c.exitCode}: ${err.slice(-500)}`);
      const ok = await new Promise<boolean>((r) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          r(true);
        });
        s.on('error', () => r(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    tlsPort,
    username,
    password,
    pki,
    restart: async () => {
      await kill('SIGTERM');
      await start();
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
