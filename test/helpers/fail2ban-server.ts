import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Fail2banServer {
  dir: string;
  socket: string;
  /** Stops the server, keeps its folder (database included) and starts it again. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a real fail2ban-server with everything in a temp dir (socket, pid file, database, log)
 * and one jail watching an empty log, so only fail2ban-client ever bans. `exec` runs it (and so
 * its actions) inside a namespace.
 */
export async function startFail2ban(
  jail: string,
  actionFor: (dir: string) => { ban: string; unban: string },
  bantime: number,
  exec: string[] = [],
): Promise<Fail2banServer> {
  return startFail2banWith(async (dir, conf) => {
    const action = actionFor(dir);
    await writeFile(join(dir, 'empty.log'), '');
    await writeFile(
      join(conf, 'filter.d', 'none.conf'),
      '[Definition]\nfailregex = ^never matches <HOST>$\n',
    );
    await writeFile(
      join(conf, 'action.d', 'test.conf'),
      `[Definition]\nactionban = ${action.ban}\nactionunban = ${action.unban}\n`,
    );
    await writeFile(
      join(conf, 'jail.conf'),
      `[DEFAULT]\nbackend = polling\n[${jail}]\nenabled = true\nfilter = none\nlogpath = ${dir}/empty.log\naction = test\nbantime = ${bantime}\n`,
    );
  }, exec);
}

/**
 * Starts a real fail2ban-server on a configuration `configure` writes into `conf` (its
 * `filter.d` and `action.d` exist; `fail2ban.conf` is written here, `jail.conf` is the caller's).
 */
export async function startFail2banWith(
  configure: (dir: string, conf: string) => Promise<void>,
  exec: string[] = [],
): Promise<Fail2banServer> {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-f2b-'));
  const conf = join(dir, 'conf');
  await mkdir(join(conf, 'filter.d'), { recursive: true });
  await mkdir(join(conf, 'action.d'), { recursive: true });
  const socket = join(dir, 'fail2ban.sock');
  await writeFile(
    join(conf, 'fail2ban.conf'),
    `[Definition]\nloglevel = INFO\nlogtarget = ${dir}/server.log\nsocket = ${socket}\npidfile = ${dir}/pid\ndbfile = ${dir}/db.sqlite3\n`,
  );
  await configure(dir, conf);
  const argv = [
    ...exec,
    'fail2ban-server',
    '-c',
    conf,
    '-s',
    socket,
    '-p',
    join(dir, 'pid'),
    '-b',
    '--logtarget',
    join(dir, 'server.log'),
  ];
  const launch = () => run(argv[0]!, argv.slice(1), { timeout: 30_000 });
  const halt = () =>
    run('fail2ban-client', ['-s', socket, 'stop'], { timeout: 30_000 }).catch(async () => {
      const pid = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
      if (pid > 0) process.kill(pid, 'SIGKILL');
    });
  await launch().catch(async (err) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    dir,
    socket,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
