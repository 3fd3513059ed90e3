import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  /** SIGKILLs the server. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and store dir. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  urls: string[];
  stop(): Promise<void>;
}

/**
 * Starts `size` nats-server processes with JetStream, routed to each other on free ports, each
 * with its own store dir (a private cluster per test file).
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-nats-'));
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })),
  );
  const procs = new Map<string, ChildProcess>();
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`);
  const nodes = ports.map((p, i): NatsNode => {
    const name = `n${i}`;
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `jetstream { store_dir: "${join(dir, name)}" }`,
        `cluster { name: rampart-test, listen: 127.0.0.1:${p.route}, routes: [${routes.filter((_, j) => j !== i).join(', ')}] }`,
      ].join('\n'),
    );
    const start = async () => {
      const child = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      procs.set(name, child);
      await new Promise<void>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (b: Buffer) => {
          // Only the tail is kept: the server logs for as long as it runs.
          err = (err + b.toString()).slice(-4_000);
          if (err.includes('Server is ready')) resolve();
        });
        child.once('exit', (code) =>
          reject(new Error(`nats-server ${name} exited ${code}: ${err.slice(-500)}`)),
        );
      });
    };
    const kill = async () => {
      const child = procs.get(name);
      // A node killed before has a signalCode and no exitCode: waiting for its exit would hang.
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    };
    return { name, port: p.client, url: `nats://127.0.0.1:${p.client}`, kill, restart: start };
  });
  try {
    await Promise.all(nodes.map((n) => n.restart()));
  } catch (err) {
    for (const n of nodes) await n.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    stop: async () => {
      for (const n of nodes) await n.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
