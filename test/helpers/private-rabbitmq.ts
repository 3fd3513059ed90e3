import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);
const SBIN = '/usr/lib/rabbitmq/bin';
/** The shared node's cookie: our CLI calls and the new node agree on it (copied to HOME). */
const COOKIE = '/var/lib/rabbitmq/.erlang.cookie';

export interface PrivateRabbitmq {
  node: string;
  port: number;
  /** amqp://guest:guest@127.0.0.1:PORT/ (guest may log in over loopback). */
  url: string;
  /** The beam.smp process (its RSS is the broker's memory). */
  pid: number;
  /** The open-files limit the node runs with. */
  openFiles: number;
  stop(): Promise<void>;
}

/**
 * A RabbitMQ node of the caller's own beside the shared one: its own node name, AMQP and
 * distribution ports from free ports, Mnesia, logs, config and cookie in a temp folder,
 * management off, and the open-files limit raised as far as the hard limit allows (`ulimit -n`
 * cannot go past it without CAP_SYS_RESOURCE). The shared broker runs with 1,024, too few for
 * thousands of agents. `stop()` kills it and deletes the folder; on a failed start the same
 * happens before the error is thrown.
 */
export async function startPrivateRabbitmq(openFiles = 65_536): Promise<PrivateRabbitmq> {
  // A free port can be taken before the node binds it (the shared node's CLI calls use a range
  // of ports of their own): a failed start is tried again with other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(openFiles);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function startOnce(openFiles: number): Promise<PrivateRabbitmq> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-rmq-'));
  const node = `rp-bench-${process.pid}-${dir.slice(-6)}@localhost`;
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      // The script and beam.smp share a process group of their own (detached): end both.
      killGroup(child.pid!, 'SIGTERM');
      const t = setTimeout(() => killGroup(child!.pid!, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const dist = await freePort();
    copyFileSync(COOKIE, join(dir, '.erlang.cookie'));
    writeFileSync(join(dir, 'rabbitmq.conf'), 'log.console = false\n');
    // Empty: no /etc/rabbitmq/rabbitmq-env.conf (it names the shared node) and no plugins.
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    const env = {
      ...process.env,
      HOME: dir,
      RABBITMQ_NODENAME: node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(dist),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    };
    const hard = Number((await run('sh', ['-c', 'ulimit -Hn'])).stdout.trim()) || openFiles;
    const limit = Math.min(openFiles, hard);
    child = spawn('sh', ['-c', `ulimit -n ${limit} && exec ${SBIN}/rabbitmq-server`], {
      cwd: dir,
      env,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-2_000);
    });
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) =>
        reject(new Error(`rabbitmq-server ${node} exited ${code}: ${err || tail(join(dir, 'log'), node)}`)),
      ),
    );
    // The AMQP listener opens last in the boot; await_startup then confirms the node is running.
    await Promise.race([exited, waitForPort(port, 180_000)]);
    await Promise.race([
      exited,
      run(`${SBIN}/rabbitmqctl`, ['-n', node, 'await_startup', '--timeout', '60'], { env, timeout: 90_000 }),
    ]);
    const beam = Number(
      (await run('pgrep', ['-g', String(child.pid), '-f', 'beam.smp'])).stdout.trim().split('\n')[0],
    );
    return { node, port, url: `amqp://guest:guest@127.0.0.1:${port}/`, pid: beam, openFiles: limit, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > end) throw new Error(`RabbitMQ did not open port ${port} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tail(logDir: string, node: string): string {
  try {
    return readFileSync(join(logDir, `${node}.log`), 'utf8').slice(-1_500);
  } catch {
    return '(no log)';
  }
}
