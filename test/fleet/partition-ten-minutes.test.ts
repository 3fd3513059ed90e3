import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { FakeClock, LIBFAKETIME, probeSpeed } from '../helpers/fake-clock.js';
import { canConnect, createLan, type Host, type Lan, tcpListener, unixRelay } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { MAIN, Proc, removeDir, tempDir } from './harness.js';
import { expectGapFreeLog, nftElements, v6Addrs } from './scale-harness.js';

/*
 * An agent cut off from its fleet for 10 minutes of log time (its namespace's link down) while
 * bans are added, expire, are lifted and are made permanent, then reconnected: how long until its
 * kernel set matches the hub's log again, and real TCP connections through it.
 *
 * Ten real minutes would be ten minutes of CI, so the hub and the agents run on a faked clock:
 * libfaketime is preloaded into each of those Node processes with a 20× speed-up, lined up on
 * one model clock (`FakeClock`), and the whole scenario takes under a minute of wall time.
 *
 * What runs on the faked clock (20× real): everything inside the hub and agent processes —
 *   Date.now (decision createdAt/expiresAt, envelope timestamps and their acceptance window,
 *   the hub's log), and the monotonic clock that Node's timers read (libuv computes its timer
 *   deadlines from it and libfaketime scales the epoll wait) — so reconcile every 60 s, heartbeats
 *   every 10 s, the catch-up poll, HTTP timeouts, MQTT keepalive and reconnect backoff all run at
 *   the fleet's speed. The embedded broker is inside the hub process, so it is faked too. The
 *   test checks this first with a probe process (a 20 s timer must take about 1 s of real time
 *   and show 20 s on both clocks), and at the end from every process's own log lines (their clocks
 *   agree with the model to within a few seconds).
 *
 * What does not: the kernel. nftables counts element timeouts in real seconds, so an element
 *   the agent adds with "timeout 180s" (three fleet minutes left) would stay for 180 real seconds,
 *   an hour of fleet time. In the field the kernel drops an expired ban on time; here what drops
 *   it is the agent's reconcile (every 60 s of fleet time: expired bans are pruned from its state
 *   and the set is diffed against it), the same backstop that repairs a flushed set. So the
 *   comparisons below are exact (nothing missing, nothing extra against the log's bans in force
 *   at the hub's clock), and a ban that expired since the agent's last reconcile counts as extra
 *   until that reconcile runs: the convergence figures include it rather than hiding it. The
 *   schedule keeps expiries away from the reconnection, so the figure printed for it is the
 *   catch-up itself. TCP, neighbour discovery and the test process itself also run on real time;
 *   the `rampart join` CLI runs on real time (it only exchanges keys).
 */

const SPEED = 20;
const MIN = 60_000;
const PORT = 2222;

const req = requirements('fleet: an agent cut off for 10 minutes of log time', [
  'netns',
  'cmd:nft',
  `file:${LIBFAKETIME}`,
  'file:dist/cli/main.js',
]);

interface ApiReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field
  json: any;
}

/** The hub's API through the unix-socket relay into its namespace. */
function api(
  socketPath: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiReply> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        socketPath,
        method,
        path,
        headers: {
          authorization: `Bearer ${token}`,
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (b: Buffer) => {
          text += b.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }));
      },
    );
    r.on('error', reject);
    r.on('timeout', () => r.destroy(new Error(`${method} ${path}: timed out`)));
    r.end(data);
  });
}

describe.skipIf(req.skip)('fleet: an agent cut off for 10 minutes of log time', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
  });

  it('bans added, expired, lifted and made permanent during the cut: on reconnect its kernel matches the log', async () => {
    const clock = new FakeClock(SPEED);

    // The speed-up must reach both of Node's clocks and its timers, or nothing below means much.
    const probe = await probeSpeed(clock, 20_000);
    console.log(JSON.stringify({ clockProbe: probe, speed: SPEED }));
    // A timer never fires early; both clocks run at one rate; and that rate is the speed-up
    // (loosely: a starved machine delays the timer and the lines, not the ratio much).
    expect(probe.monoMs).toBeGreaterThanOrEqual(19_900);
    expect(Math.abs(probe.wallMs - probe.monoMs)).toBeLessThan(1_000);
    expect(probe.wallMs / probe.realMs).toBeGreaterThan(SPEED * 0.7);
    expect(probe.wallMs / probe.realMs).toBeLessThan(SPEED * 1.4);

    // h0 the hub (and its embedded broker), h1 an agent that stays connected, h2 the agent cut
    // off, h3 a client whose extra addresses get banned.
    const lan: Lan = await createLan(4, 'prt');
    cleanup.push(() => lan.destroy());
    const [hubHost, agentHosts, client] = [lan.hosts[0]!, [lan.hosts[1]!, lan.hosts[2]!], lan.hosts[3]!];
    const CUT = 1;
    const dirs: string[] = [];
    cleanup.push(() => dirs.forEach(removeDir));
    const procs: Proc[] = [];
    cleanup.push(() => Promise.all(procs.map((p) => p.stop())));
    const fakeEnv = () => ({ ...process.env, RAMPART_LOG_LEVEL: 'info', ...clock.env() });

    const hubDir = tempDir('part-hub');
    dirs.push(hubDir);
    const hub = new Proc(
      hubHost.spawn(process.execPath, [MAIN, 'hub', '--data', hubDir, '--listen', hubHost.v4], {
        env: fakeEnv(),
      }),
    );
    procs.push(hub);
    const started = await hub.waitFor((l) => l.msg === 'hub started', 90_000, 'hub started');
    const socket = join(hubDir, 'api.sock');
    const relay = await unixRelay(hubHost, socket, hubHost.v4, Number(new URL(started.url as string).port));
    cleanup.push(() => relay.stop());
    const token = readFileSync(join(hubDir, 'hub', 'admin.token'), 'utf8').trim();
    const call = (method: string, path: string, body?: unknown) => api(socket, token, method, path, body);
    const ban = async (targets: string[], duration: string) => {
      const r = await call('POST', '/v1/decisions/bulk', {
        decisions: targets.map((target) => ({ target, duration, reason: 'partition test' })),
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    };
    const unban = async (targets: string[]) => {
      for (const t of targets) expect((await call('DELETE', `/v1/decisions/${t}`)).status).toBe(200);
    };
    // The hub's clock, as its own log lines place it against the model.
    const hubNow = () => clock.now() - clock.lagMs(hub.lines, hub.arrivals);

    const startAgent = async (host: Host, i: number) => {
      const dir = tempDir(`part-agent${i}`);
      dirs.push(dir);
      const added = await call('POST', '/v1/nodes', { name: `agent${i}` });
      expect(added.status).toBe(201);
      await host.exec(process.execPath, [MAIN, 'join', added.json.token, '--data', dir]);
      // The defaults, spelled out: the fleet-time figures below are read against them.
      writeFileSync(
        join(dir, 'rampart.yaml'),
        'agent:\n  reconcileInterval: 60s\n  heartbeatInterval: 10s\n',
      );
      const p = new Proc(
        host.spawn(
          process.execPath,
          [MAIN, 'agent', '--data', dir, '--config', join(dir, 'rampart.yaml'), '--firewall', 'nftables'],
          { env: fakeEnv() },
        ),
      );
      procs.push(p);
      // Generous: every timeout inside runs 20× short in wall time, so a starved machine needs retries.
      await p.waitFor((l) => l.msg === 'bus' && l.status === 'up', 90_000, `agent${i} bus up`);
      return p;
    };
    const agents = await Promise.all(agentHosts.map(startAgent));
    const listener = await tcpListener(agentHosts[CUT]!, PORT);
    cleanup.push(() => listener.stop());

    const store = new SqliteStore(join(hubDir, 'hub', 'hub.db'));
    cleanup.push(() => store.close());
    /**
     * Waits until the kernel sets of `which` agents hold exactly the log's bans in force at the
     * hub's clock, then checks the log's seq; prints the time it took in real and fleet time.
     */
    const converged = async (label: string, which: number[], from = Date.now()) => {
      for (;;) {
        const now = hubNow();
        const want = new Set((await store.active(now)).filter((d) => d.family === 6).map((d) => d.target));
        let diff = '';
        for (const i of which) {
          const got = await nftElements(agentHosts[i]!);
          const missing = [...want].filter((x) => !got.has(x));
          const extra = [...got].filter((x) => !want.has(x));
          if (missing.length || extra.length)
            diff += `agent${i}: ${missing.length} missing (${missing.slice(0, 3).join(' ')}), ${extra.length} extra (${extra.slice(0, 3).join(' ')})\n`;
        }
        if (!diff) {
          const realMs = Date.now() - from;
          const r = { bans: want.size, head: await expectGapFreeLog(store), realMs, fleetMs: realMs * SPEED };
          console.log(JSON.stringify({ converged: label, agents: which.map((i) => `agent${i}`), ...r }));
          return r;
        }
        // Two minutes of fleet time is more than a catch-up plus a reconcile.
        if (Date.now() - from > clock.realMs(2 * MIN) + 20_000)
          throw new Error(`${label}: kernel sets differ from the log at hub time ${now}:\n${diff}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    // The client's own addresses, banned in different ways during the cut.
    const addr = {
      permanent: '2001:db8::b1',
      expired: '2001:db8::b2',
      lifted: '2001:db8::b3',
      later: '2001:db8::b4',
    };
    for (const a of Object.values(addr))
      await client.exec('ip', ['addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);

    const base = v6Addrs(200, 1_000);
    await ban(base, '1h');
    await converged('before the cut', [0, 1]);
    expect(await canConnect(client, agentHosts[CUT]!.v6, PORT, 3000, addr.permanent)).toBe(true);

    // The cut: agent 1's port on the switch goes down, its link loses carrier.
    await lan.setLink(CUT + 1, false);
    const cutAt = clock.now();
    const cutHub = hubNow();
    const at = (minutes: number) => clock.until(cutAt + minutes * MIN);

    const batch = (n: number, k: number) => v6Addrs(n, 10_000 * k);
    const expiring1 = batch(100, 1);
    const expiring3 = batch(100, 3);
    const permanent = batch(100, 4);
    const expiring4 = batch(100, 5);
    const long6 = batch(100, 6);
    const long8 = batch(100, 8);
    // Expiries are kept away from the checks (8.5, the reconnection at 10 and the connections
    // right after it, 15.6), so each check measures what it names rather than a reconcile's wait.
    await at(0.5);
    await ban([...expiring1, addr.expired], '1m'); // gone at 1.5
    await at(1);
    await ban(expiring3, '3m'); // gone at 4
    await at(2);
    await ban([...permanent, addr.permanent], 'permanent');
    await at(3);
    await unban([...base.slice(0, 50), ...permanent.slice(0, 30)]);
    await at(4);
    await ban(expiring4, '4m'); // gone at 8
    await at(6);
    await ban(long6, '6m'); // in force at the reconnection, gone at 12
    await at(7.5);
    await ban([...long8, addr.lifted, addr.later], '8m'); // in force at the reconnection, gone at 15.5
    await at(8);
    await unban([...long8.slice(0, 30), addr.lifted]);

    // Late in the cut: the connected agent already matches the log (its expiries came from its
    // reconcile on the fleet's clock), the cut-off one still has what it last knew.
    await at(8.5);
    await converged('connected agent during the cut', [0]);
    const stale = await nftElements(agentHosts[CUT]!);
    expect(base.slice(0, 50).every((a) => stale.has(a))).toBe(true);
    expect(permanent.some((a) => stale.has(a))).toBe(false);
    expect(agents[CUT]!.count((l) => l.msg === 'bus' && l.status === 'down')).toBeGreaterThan(0);

    await at(10);
    const restored = Date.now();
    await lan.setLink(CUT + 1, true);
    const cutMinutes = (hubNow() - cutHub) / MIN;
    const rejoined = await converged('agent cut off for 10 minutes, reconnected', [0, 1], restored);
    // Where that time went: the agent's bus back up (the HTTP catch-up may come first).
    const cutOff = agents[CUT]!;
    const up = cutOff.lines.findIndex(
      (l, k) => l.msg === 'bus' && l.status === 'up' && cutOff.arrivals[k]! >= restored,
    );
    const busUpMs = up < 0 ? undefined : cutOff.arrivals[up]! - restored;
    console.log(
      `partition: cut for ${cutMinutes.toFixed(1)} min of hub time; bus back up after ${busUpMs} ms of wall time; kernels matched the log ${rejoined.realMs} ms of wall time (${(rejoined.fleetMs / 1000).toFixed(1)} s of fleet time) after the link came back`,
    );
    expect(cutMinutes).toBeGreaterThanOrEqual(10);
    // In force: what is left of the baseline, of the permanent bans, of both long batches.
    expect(rejoined.bans).toBe(150 + 71 + 71 + 100);

    // The kernel holds the agent's remaining fleet time as real seconds (see the header).
    const t = await kernelTimeout(agentHosts[CUT]!, long8[99]!);
    expect(t).toBeGreaterThan(180);
    expect(t).toBeLessThanOrEqual(330);

    // Real connections from the client, through the cut-off agent's firewall.
    const through = (from: string, ms = 3000) => canConnect(client, agentHosts[CUT]!.v6, PORT, ms, from);
    const [expired, lifted, perm, later] = await Promise.all([
      through(addr.expired),
      through(addr.lifted),
      through(addr.permanent, 1500),
      through(addr.later, 1500),
    ]);
    expect({ expired, lifted, perm, later }).toEqual({
      expired: true,
      lifted: true,
      perm: false,
      later: false,
    });

    // Once the 6- and 8-minute bans are over (15.5, or later if a slow machine delayed their
    // requests: read from the log), they are gone everywhere too.
    const lastExpiry = Math.max(
      ...(await store.active(hubNow())).filter((d) => long8.includes(d.target)).map((d) => d.expiresAt ?? 0),
    );
    await clock.until(lastExpiry + (clock.now() - hubNow()) + 0.1 * MIN);
    const after = await converged('after the 6- and 8-minute bans ran out', [0, 1]);
    expect(after.bans).toBe(150 + 71);
    expect(await Promise.all([through(addr.later), through(addr.permanent, 1500)])).toEqual([true, false]);

    // Every faked process kept to the model: their clocks agree within a few seconds of fleet time.
    const lags = [hub, ...agents].map((p) => Math.round(clock.lagMs(p.lines, p.arrivals)));
    console.log(
      JSON.stringify({
        clockLagMs: { hub: lags[0], agent0: lags[1], agent1: lags[2] },
        fleetMinutes: +((clock.now() - clock.t0) / MIN).toFixed(1),
        wallSeconds: +((Date.now() - clock.t0) / 1000).toFixed(1),
      }),
    );
    for (const lag of lags) expect(Math.abs(lag - lags[0]!)).toBeLessThan(5_000);
  }, 300_000);
});

/** The timeout (s) nftables holds for `addr` in rampart's v6 set inside `host`. */
async function kernelTimeout(host: Host, addr: string): Promise<number> {
  const out = await host.exec('nft', ['-j', 'list', 'set', 'inet', 'rampart', 'blocklist_v6']);
  // biome-ignore lint/suspicious/noExplicitAny: nft's JSON element shape
  for (const item of JSON.parse(out).nftables as Array<Record<string, any>>)
    for (const e of item.set?.elem ?? []) if (e.elem?.val === addr) return e.elem.timeout as number;
  throw new Error(`${addr} is not in the set`);
}
