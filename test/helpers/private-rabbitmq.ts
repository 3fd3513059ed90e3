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
  /** The beam.smp process (its RSS is the broker's memory); a new one after `restart()`. */
  pid: number;
  /** The open-files limit the node runs with. */
  openFiles: number;
  /**
   * Stops the node, `graceful` (`rabbitmqctl shutdown`: connections closed by the broker, queues
   * written out) or `kill` (SIGKILL of beam.smp: sockets reset, nothing flushed), then starts it
   * again with the same node name, ports and Mnesia, so durable queues and the exchange come back.
   * Resolves once the node accepts AMQP again, with how long it was down.
   */
  restart(how: 'graceful' | 'kill'): Promise<{ downMs: number }>;
  /** The end of the node's log (every boot of it), for a failing test's message. */
  logTail(chars?: number): string;
  /** Runs `rabbitmqctl ARGS` against this node; resolves with its stdout. */
  ctl(args: string[]): Promise<string>;
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
  /** Ends the node's process group (the script, beam.smp and its helpers) and waits for the script. */
  const halt = async (first: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    // The script and beam.smp share a process group of their own (detached): end both.
    killGroup(c.pid!, first);
    const t = setTimeout(() => killGroup(c.pid!, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };
  const stop = async () => {
    await halt('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const dist = await freePort();
    const pidFile = join(dir, 'beam.pid');
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
      RABBITMQ_PID_FILE: pidFile,
    };
    const hard = Number((await run('sh', ['-c', 'ulimit -Hn'])).stdout.trim()) || openFiles;
    const limit = Math.min(openFiles, hard);
    /** Starts the node in `dir` and resolves with beam.smp's pid once it runs. */
    const boot = async (): Promise<number> => {
      // A killed node leaves its pid file behind: `wait` must see the new one.
      rmSync(pidFile, { force: true });
      const c = spawn('sh', ['-c', `ulimit -n ${limit} && exec ${SBIN}/rabbitmq-server`], {
        cwd: dir,
        env,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      let err = '';
      c.stderr!.on('data', (b: Buffer) => {
        err = (err + b.toString()).slice(-2_000);
      });
      const exited = new Promise<never>((_, reject) =>
        c.once('exit', (code) =>
          reject(new Error(`rabbitmq-server ${node} exited ${code}: ${err || tail(join(dir, 'log'), node)}`)),
        ),
      );
      exited.catch(() => undefined);
      try {
        // `wait` follows the pid file the node writes and returns once the node runs. Waiting for
        // the port and then `await_startup` once failed right after a SIGKILL restart with the new
        // node not yet known to epmd.
        await Promise.race([
          exited,
          run(`${SBIN}/rabbitmqctl`, ['-n', node, 'wait', pidFile, '--timeout', '180'], {
            env,
            timeout: 200_000,
          }),
        ]);
        await Promise.race([exited, waitForPort(port, 30_000)]);
      } catch (e) {
        // The node's own log says why it did not come up.
        throw new Error(`${(e as Error).message}\nnode log: ${tail(join(dir, 'log'), node)}`);
      }
      return Number(readFileSync(pidFile, 'utf8').trim());
    };
    const pid = await boot();
    const rmq: PrivateRabbitmq = {
      node,
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}/`,
      pid,
      openFiles: limit,
      stop,
      logTail: (chars = 1_500) => tail(join(dir, 'log'), node, chars),
      ctl: async (args) =>
        (await run(`${SBIN}/rabbitmqctl`, ['-n', node, ...args], { env, timeout: 90_000 })).stdout,
      restart: async (how) => {
        const t0 = Date.now();
        if (how === 'kill') killPid(rmq.pid, 'SIGKILL');
        else await rmq.ctl(['shutdown', '--timeout', '60']);
        // The script ends with beam.smp; anything of the group left (a helper) goes with it.
        await halt(how === 'kill' ? 'SIGKILL' : 'SIGTERM');
        rmq.pid = await boot();
        return { downMs: Date.now() - t0 };
      },
    };
    return rmq;
  } catch (e) {
    await stop();
    throw e;
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  killPid(-pid, signal);
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

function tail(logDir: string, node: string, chars = 1_500): string {
  try {
    return readFileSync(join(logDir, `${node}.log`), 'utf8').slice(-chars);
  } catch {
    return '(no log)';
  }
}
