import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { RampartError } from './errors.js';

export interface DataLock {
  release(): Promise<void>;
}

/**
 * Holds `dir` for one process of `role` (a hub, an agent; `rampart up` takes both), so a second
 * start on the same folder fails at once instead of fighting the first over its broker port and
 * rewriting hub.json. The lock is an abstract UNIX socket named after the folder: the kernel
 * frees it when the holder dies (no stale lock after SIGKILL), taking it writes nothing (a hub
 * still restarts on a full disk), and the holder answers a connection with its pid so the error
 * can name it. Abstract names are per network namespace, which is where one host's daemons run.
 */
export async function lockDataFolder(dir: string, role: 'hub' | 'agent'): Promise<DataLock> {
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // Not there yet: the caller creates it; the path as given names it.
  }
  const key = createHash('sha256').update(`${real}\0${role}`).digest('hex').slice(0, 40);
  const name = `\0rampart-lock-${key}`;
  const server = createServer((s) => s.end(`${process.pid}\n`));
  try {
    await listen(server, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const pid = await holderPid(name);
    throw new RampartError(
      'E_LOCKED',
      `data folder ${dir} is in use by another rampart ${role}${pid ? ` (pid ${pid})` : ''}: stop it first, or give this one its own --data`,
    );
  }
  server.unref();
  return { release: () => new Promise<void>((r) => server.close(() => r())) };
}

function listen(server: Server, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The holder's pid, as it answers; undefined if it does not within a second. */
function holderPid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const s = createConnection(name);
    const done = () => {
      s.destroy();
      const pid = Number.parseInt(text, 10);
      resolve(Number.isSafeInteger(pid) && pid > 0 ? pid : undefined);
    };
    s.setTimeout(1000, done);
    s.on('data', (b: Buffer) => {
      text += b.toString('utf8').slice(0, 16);
    });
    s.on('end', done);
    s.on('error', done);
  });
}
