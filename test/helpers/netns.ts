import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Every namespace this process created, removed on exit even when a test threw. */
const created = new Set<string>();
process.on('exit', () => {
  for (const ns of created) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {}
  }
});

export interface Host {
  ns: string;
  v4: string;
  v6: string;
  /** Runs a command inside the host's namespace. */
  exec(cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  spawn(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
}

export interface Lan {
  hosts: Host[];
  /** Puts host i's port on the switch down or up: its link loses carrier, as a pulled cable. */
  setLink(i: number, up: boolean): Promise<void>;
  destroy(): Promise<void>;
}

function execIn(ns: string) {
  return async (cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}) => {
    const child = run('ip', ['netns', 'exec', ns, cmd, ...args], {
      timeout: opts.timeoutMs ?? 30_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    if (opts.input !== undefined) {
      child.child.stdin?.end(opts.input);
    }
    const { stdout } = await child;
    return stdout;
  };
}

/**
 * Builds `count` hosts on one virtual LAN: a bridge in a switch namespace, one namespace per host
 * joined to it by a veth pair. Host i (0-based) gets 198.51.100.(i+1)/24 and 2001:db8::(i+1)/64
 * (documentation ranges only). Names are unique per call so suites can run side by side.
 */
export async function createLan(count: number, tag = 'lan'): Promise<Lan> {
  const id = `${tag.slice(0, 4)}${process.pid % 10000}${randomBytes(2).toString('hex')}`;
  const sw = `rp-${id}-sw`;
  const hosts: Host[] = [];
  const sh = (args: string[]) => run('ip', args);
  const destroy = async () => {
    for (const ns of [...hosts.map((h) => h.ns), sw]) {
      if (!created.has(ns)) continue;
      created.delete(ns);
      await run('ip', ['netns', 'del', ns]).catch(() => {});
    }
  };
  try {
    await sh(['netns', 'add', sw]);
    created.add(sw);
    // No multicast snooping: without a querier it can swallow IPv6 neighbour discovery.
    await sh(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'forward_delay', '0']);
    await sh(['-n', sw, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < count; i++) {
      const ns = `rp-${id}-h${i}`;
      await sh(['netns', 'add', ns]);
      created.add(ns);
      // Duplicate address detection would leave link-local addresses tentative for seconds.
      await run('ip', [
        'netns',
        'exec',
        ns,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
      ]);
      const v4 = `198.51.100.${i + 1}`;
      const v6 = `2001:db8::${(i + 1).toString(16)}`;
      // Create the pair inside the host namespace, then move the switch end over.
      await sh(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`]);
      await sh(['-n', ns, 'link', 'set', `p${i}`, 'netns', sw]);
      await sh(['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0']);
      await sh(['-n', sw, 'link', 'set', `p${i}`, 'up']);
      await sh(['-n', ns, 'link', 'set', 'lo', 'up']);
      await sh(['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', 'eth0']);
      await sh(['-n', ns, 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad']);
      await sh(['-n', ns, 'link', 'set', 'eth0', 'up']);
      hosts.push({
        ns,
        v4,
        v6,
        exec: execIn(ns),
        spawn: (cmd, args, opts = {}) =>
          spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: opts.env ?? process.env,
          }),
      });
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  const setLink = async (i: number, up: boolean) => {
    await sh(['-n', sw, 'link', 'set', `p${i}`, up ? 'up' : 'down']);
  };
  return { hosts, destroy, setLink };
}

const LISTENER = `
const net = require('node:net');
const s = net.createServer((c) => c.end('ok\\n'));
s.listen(Number(process.argv[1]), '::', () => process.stdout.write('ready\\n'));
`;

/** Runs a Node script inside a host; resolves once it prints `ready`. SIGKILLed by `stop()`. */
async function startReady(host: Host, script: string, args: string[]): Promise<{ stop(): void }> {
  const child = host.spawn(process.execPath, ['-e', script, ...args]);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`script in ${host.ns} exited with ${code}`)));
  });
  return { stop: () => child.kill('SIGKILL') };
}

/** Starts a TCP server (IPv4 and IPv6) inside a host; resolves once it listens. */
export function tcpListener(host: Host, port: number): Promise<{ stop(): void }> {
  return startReady(host, LISTENER, [String(port)]);
}

const RELAY = `
const net = require('node:net');
const [path, addr, port] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(Number(port), addr);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
  c.pipe(u).pipe(c);
}).listen(path, () => process.stdout.write('ready\\n'));
`;

/**
 * Relays a unix socket to `addr:port` as seen from inside `host`: the file system is shared
 * across namespaces, so this is how the test process (in the root namespace) reaches a server
 * that listens only inside one.
 */
export function unixRelay(
  host: Host,
  socketPath: string,
  addr: string,
  port: number,
): Promise<{ stop(): void }> {
  return startReady(host, RELAY, [socketPath, addr, String(port)]);
}

const CONNECTOR = `
const net = require('node:net');
const [addr, port, ms, from] = process.argv.slice(1);
const c = net.connect({ host: addr, port: Number(port), ...(from ? { localAddress: from } : {}) });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
c.on('data', () => { console.log('connected'); clearTimeout(t); c.destroy(); process.exit(0); });
c.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
`;

/**
 * Tries a real TCP connection from one host to an address; true only when the server answered.
 * A dropped SYN shows as a timeout, a rejected one as an error: both are "blocked". The first
 * IPv6 packet on a fresh LAN waits about 1 s for neighbour discovery, hence the patient default.
 */
export async function canConnect(
  from: Host,
  addr: string,
  port: number,
  timeoutMs = 3000,
  /** The source address, when the host has several (an extra one added to its eth0). */
  localAddress?: string,
): Promise<boolean> {
  const args = [
    '-e',
    CONNECTOR,
    addr,
    String(port),
    String(timeoutMs),
    ...(localAddress ? [localAddress] : []),
  ];
  const out = await from.exec(process.execPath, args, { timeoutMs: timeoutMs + 10_000 });
  return out.trim() === 'connected';
}
