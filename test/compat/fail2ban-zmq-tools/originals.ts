import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The originals' sources, beside the repository (CI lays shared/ there too). */
export const ORIGINALS = resolve(import.meta.dirname, '../../../../shared/originals/fail2ban-zmq-tools');
export const PYTHON = '/usr/bin/python3';

/*
 * A driver for the original classes: it imports them from the originals' folder (nothing is
 * copied), hands each its config section as the dict the original's ConfigParsing would build,
 * and reports on stdout as JSON lines what they would have sent to syslog (`log`), that they are
 * ready, and any thread that died on an exception (`crash`). It exits when stdin closes.
 */
const DRIVER = `
import json, os, sys, threading, syslog
sys.path.insert(0, sys.argv[1])
role, cfg, opts = sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
lock = threading.Lock()
def out(*a):
    with lock:
        print(json.dumps(a), flush=True)
syslog.syslog = lambda *a: out('log', a[-1])
threading.excepthook = lambda args: out('crash', repr(args.exc_value))
if role == 'publisher':
    import publisher
    t = publisher.Publisher(publisherconfig=cfg)
elif role == 'subscriber':
    import subscriber
    t = subscriber.Subscriber(subscriberconfig=cfg)
else:
    import monitor
    t = monitor.Monitor(monitorconfig=cfg)
if 'hostname' in opts:
    t.hostname = opts['hostname']
t.daemon = True
t.start()
if role == 'monitor':
    size = os.stat(cfg['fail2banlogpath']).st_size
    while t.logfile.tell() != size:
        threading.Event().wait(0.01)
out('ready')
sys.stdin.read()
`;

export interface Original {
  proc: ChildProcess;
  /** Every `[kind, text]` the driver reported so far. */
  events: Array<[string, string]>;
  /** Resolves with the first event matching `pred` (past or future). */
  next(pred: (kind: string, text: string) => boolean): Promise<[string, string]>;
  stop(): Promise<void>;
}

export async function startOriginal(
  dir: string,
  role: 'monitor' | 'publisher' | 'subscriber',
  cfg: Record<string, string>,
  opts: { hostname?: string } = {},
): Promise<Original> {
  const driver = join(dir, 'driver.py');
  writeFileSync(driver, DRIVER);
  const proc = spawn(PYTHON, ['-u', driver, ORIGINALS, role, JSON.stringify(cfg), JSON.stringify(opts)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const events: Array<[string, string]> = [];
  const waiters: Array<{ pred: (k: string, t: string) => boolean; resolve: (e: [string, string]) => void }> =
    [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let ev: [string, string];
    try {
      ev = JSON.parse(line) as [string, string];
    } catch {
      return;
    }
    events.push(ev);
    for (const w of [...waiters]) {
      if (w.pred(ev[0], ev[1] ?? '')) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(ev);
      }
    }
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const o: Original = {
    proc,
    events,
    next(pred) {
      const seen = events.find((e) => pred(e[0], e[1] ?? ''));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        void exited.then(() => reject(new Error(`original ${role} exited`)));
      });
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.stdin!.end();
        proc.kill('SIGTERM');
      }
      await exited;
    },
  };
  await o.next((k) => k === 'ready');
  return o;
}

/** A free TCP port on 127.0.0.1 (for programs that cannot bind port 0 and tell us). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}
