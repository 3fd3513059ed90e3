import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DecisionApplier, GAP_WAIT_MAX_MS } from '../../src/agent/applier.js';
import { Committer } from '../../src/agent/committer.js';
import type { DecisionPage } from '../../src/agent/hub-api.js';
import { AgentState } from '../../src/agent/state.js';
import { Allowlist } from '../../src/core/allowlist.js';
import type { Decision } from '../../src/core/decision.js';
import { silentLogger } from '../../src/core/logger.js';
import { RecordingFirewall } from './recording-firewall.js';

function decision(
  seq: number,
  target: string,
  action: 'ban' | 'unban' = 'ban',
  expiresAt: number | null = null,
): Decision {
  return {
    id: `d${seq}`,
    seq,
    action,
    target,
    family: target.includes(':') ? 6 : 4,
    duration: null,
    expiresAt,
    reason: 'test',
    rule: 'sshd',
    origin: 'web1',
    createdAt: Date.now(),
    set: 'blocklist',
  };
}

/** A hub log in memory, answering like GET /v1/decisions (retaining only from `retainedFrom`). */
class FakeLog {
  decisions: Decision[] = [];
  retainedFrom = 1;
  calls: number[] = [];
  down = false;
  append(target: string, action: 'ban' | 'unban' = 'ban', expiresAt: number | null = null): Decision {
    const d = decision(this.decisions.length + 1, target, action, expiresAt);
    this.decisions.push(d);
    return d;
  }
  async fetch(since: number, limit = 3): Promise<DecisionPage> {
    this.calls.push(since);
    if (this.down) throw new Error('hub down');
    const head = this.decisions.length;
    if (since + 1 < this.retainedFrom) {
      const active = new Map<string, Decision>();
      for (const d of this.decisions) {
        if (d.action === 'ban') active.set(d.target, d);
        else active.delete(d.target);
      }
      return { head, snapshot: true, decisions: [...active.values()] };
    }
    return { head, decisions: this.decisions.filter((d) => d.seq > since).slice(0, limit) };
  }
}

describe('decision applier', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function setup(allow: string[] = [], gapGraceMs?: number) {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-applier-'));
    dirs.push(dir);
    const state = AgentState.open(dir);
    const fw = new RecordingFirewall();
    const log = new FakeLog();
    const committer = new Committer(fw, silentLogger(), 20);
    const applier = new DecisionApplier({
      state,
      firewall: fw,
      committer,
      allowlist: new Allowlist(allow),
      log: silentLogger(),
      fetchSince: (s) => log.fetch(s),
      retryMs: 20,
      ...(gapGraceMs === undefined ? {} : { gapGraceMs }),
    });
    return { dir, state, fw, log, committer, applier };
  }

  it('a hole the bus fills within the grace (another hub published later) costs no HTTP read', async () => {
    const { state, log, applier, committer } = setup([], 10_000);
    const [a, b, c, d] = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'].map((t) => log.append(t));
    applier.live(a!);
    // Hub 2's run (3, 4) arrives before hub 1's (2).
    applier.live(c!);
    applier.live(d!);
    expect(state.lastSeq()).toBe(1);
    applier.live(b!);
    await committer.flush();
    expect(state.lastSeq()).toBe(4);
    expect(applier.stats.gaps).toBe(1);
    expect(log.calls).toEqual([]);
    // The grace timer was cleared with the hole: nothing is fetched later either.
    expect(applier.stats.catchUps).toBe(0);
  });

  it('a hole still open after the grace is fetched over HTTP', async () => {
    const { state, log, applier } = setup([], 30);
    applier.live(log.append('192.0.2.1'));
    log.append('192.0.2.2'); // lost on the bus
    applier.live(log.append('192.0.2.3'));
    expect(log.calls).toEqual([]);
    await vi.waitFor(() => expect(state.lastSeq()).toBe(3), { timeout: 5_000, interval: 5 });
    expect(log.calls[0]).toBe(1);
    expect(applier.stats).toMatchObject({ gaps: 1, catchUps: 1 });
  });

  describe('a hole while the bus keeps delivering (an agent working through a backlog)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** Delivers the next decision of the log every 10 ms for `ms`. */
    async function flow(applier: DecisionApplier, log: FakeLog, from: number, ms: number): Promise<number> {
      let next = from;
      for (let t = 0; t < ms; t += 10) {
        applier.live(log.append(`198.51.100.${next % 250}`));
        next++;
        await vi.advanceTimersByTimeAsync(10);
      }
      return next;
    }

    it('waits past the grace, and the bus fills it with no HTTP read', async () => {
      vi.useFakeTimers();
      const { state, log, applier } = setup([], 30);
      applier.live(log.append('192.0.2.1'));
      const late = log.append('192.0.2.2'); // behind others in the queue
      await flow(applier, log, 3, 200);
      expect(log.calls).toEqual([]);
      applier.live(late);
      await vi.advanceTimersByTimeAsync(100);
      expect(state.lastSeq()).toBe(log.decisions.length);
      expect(applier.stats).toMatchObject({ gaps: 1, catchUps: 0 });
    });

    it('a hole the bus never fills is read from the log once GAP_WAIT_MAX_MS has passed', async () => {
      vi.useFakeTimers();
      const { state, log, applier } = setup([], 30);
      applier.live(log.append('192.0.2.1'));
      log.append('192.0.2.2'); // lost: its hub died between commit and publish
      const next = await flow(applier, log, 3, GAP_WAIT_MAX_MS - 100);
      expect(log.calls).toEqual([]);
      await flow(applier, log, next, 200);
      expect(log.calls[0]).toBe(1);
      await vi.advanceTimersByTimeAsync(200);
      expect(state.lastSeq()).toBe(log.decisions.length);
    });

    it('with the bus quiet, the grace alone decides', async () => {
      vi.useFakeTimers();
      const { log, applier } = setup([], 30);
      applier.live(log.append('192.0.2.1'));
      log.append('192.0.2.2');
      applier.live(log.append('192.0.2.3'));
      await vi.advanceTimersByTimeAsync(29);
      expect(log.calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(2);
      expect(log.calls).toEqual([1]);
    });
  });

  it('applies live decisions in order and ignores duplicates', async () => {
    const { state, fw, log, applier, committer } = setup();
    applier.live(log.append('192.0.2.1'));
    applier.live(log.append('192.0.2.2'));
    applier.live(log.decisions[0]!);
    applier.live(log.append('192.0.2.1', 'unban'));
    await committer.flush();
    expect(fw.targets()).toEqual(['192.0.2.2']);
    expect(state.lastSeq()).toBe(3);
    expect(applier.stats.duplicates).toBe(1);
    expect(log.calls).toEqual([]);
  });

  it('a run of live decisions asks for one commit, reaches the kernel whole, and says so by its last seq', async () => {
    const { state, fw, log, applier, committer } = setup();
    let schedules = 0;
    const schedule = committer.schedule.bind(committer);
    committer.schedule = () => {
      schedules++;
      return schedule();
    };
    const run = Array.from({ length: 50 }, (_, i) => log.append(`198.51.100.${i}`));
    state.batch(() => applier.liveRun(run));
    expect(schedules).toBe(1);
    await committer.flush();
    expect(fw.targets()).toHaveLength(50);
    expect(state.lastSeq()).toBe(50);
    await new Promise((r) => setImmediate(r));
    expect(applier.kernelSeq).toBe(50);
    // A run that throws half-way still commits what it staged before, as single decisions did.
    const add = fw.add.bind(fw);
    let adds = 0;
    fw.add = (...args: Parameters<typeof fw.add>) => {
      if (++adds === 2) throw new Error('staging failed');
      add(...args);
    };
    const more = [log.append('198.51.100.200'), log.append('198.51.100.201')];
    expect(() => state.batch(() => applier.liveRun(more))).toThrow('staging failed');
    expect(schedules).toBe(2);
  });

  it('a run of live decisions reads the clock once: an expired ban is skipped, the rest time out from that reading', async () => {
    const { state, fw, log, committer } = setup();
    const t0 = Date.now();
    let reads = 0;
    const applier = new DecisionApplier({
      state,
      firewall: fw,
      committer,
      allowlist: new Allowlist(),
      log: silentLogger(),
      fetchSince: (s) => log.fetch(s),
      now: () => {
        reads++;
        return t0;
      },
    });
    const run = [
      log.append('198.51.100.1', 'ban', t0 + 120_000),
      log.append('198.51.100.2', 'ban', t0),
      log.append('198.51.100.3', 'ban', t0 + 60_500),
    ];
    state.batch(() => applier.liveRun(run));
    expect(reads).toBe(1);
    await committer.flush();
    expect(applier.stats).toMatchObject({ expired: 1, applied: 3 });
    expect(state.lastSeq()).toBe(3);
    expect(fw.committed.get('blocklist|198.51.100.1')?.timeout).toBe(120);
    expect(fw.committed.get('blocklist|198.51.100.2')).toBeUndefined();
    expect(fw.committed.get('blocklist|198.51.100.3')?.timeout).toBe(61);
  });

  it('a gap in seq buffers the live message and catches up the missing ones over HTTP, in pages', async () => {
    const { state, fw, log, applier, committer } = setup();
    applier.live(log.append('192.0.2.1'));
    for (let i = 2; i <= 7; i++) log.append(`192.0.2.${i}`); // missed while the bus was away
    log.append('192.0.2.2', 'unban');
    const live = log.append('192.0.2.9');
    applier.live(live);
    expect(state.lastSeq()).toBe(1);
    await applier.catchUp();
    await committer.flush();
    expect(state.lastSeq()).toBe(9);
    expect(fw.targets()).toEqual([
      '192.0.2.1',
      '192.0.2.3',
      '192.0.2.4',
      '192.0.2.5',
      '192.0.2.6',
      '192.0.2.7',
      '192.0.2.9',
    ]);
    expect(applier.stats.gaps).toBe(1);
    expect(log.calls.length).toBeGreaterThanOrEqual(3); // page size 3: several round trips
  });

  it('a cursor older than the retained log gets a snapshot that replaces hub bans', async () => {
    const { state, fw, log, applier, committer } = setup();
    applier.live(log.append('192.0.2.1'));
    await committer.flush();
    log.append('192.0.2.1', 'unban');
    log.append('192.0.2.5');
    log.append('198.51.100.0/24');
    log.retainedFrom = 3;
    await applier.catchUp();
    await committer.flush();
    expect(applier.stats.snapshots).toBe(1);
    expect(state.lastSeq()).toBe(4);
    expect(fw.targets()).toEqual(['192.0.2.5', '198.51.100.0/24']);
  });

  it('never applies a ban on its own allowlist, whoever signed it, and still advances seq', async () => {
    const { state, fw, log, applier, committer } = setup(['192.0.2.0/28']);
    applier.live(log.append('192.0.2.3'));
    applier.live(log.append('192.0.2.0/24'));
    applier.live(log.append('192.0.2.77'));
    await committer.flush();
    expect(fw.targets()).toEqual(['192.0.2.77']);
    expect(applier.stats.allowlisted).toBe(2);
    expect(state.lastSeq()).toBe(3);
    expect(
      applier.local(
        (await import('../../src/core/address.js')).parseTarget('192.0.2.4'),
        60,
        'blocklist',
        'me',
      ),
    ).toBe(false);
  });

  it('re-applies the durable copy on restart before any network call', async () => {
    const a = setup();
    a.applier.live(a.log.append('192.0.2.1', 'ban', Date.now() + 3_600_000));
    a.applier.live(a.log.append('2001:db8::1'));
    a.applier.live(a.log.append('192.0.2.3', 'ban', Date.now() - 1)); // already expired: skipped
    await a.committer.flush();
    a.state.close();
    const state = AgentState.open(a.dir);
    const fw = new RecordingFirewall();
    const calls: number[] = [];
    const applier = new DecisionApplier({
      state,
      firewall: fw,
      committer: new Committer(fw, silentLogger()),
      allowlist: new Allowlist(),
      log: silentLogger(),
      fetchSince: async (s) => {
        calls.push(s);
        return { head: 3, decisions: [] };
      },
    });
    expect(await applier.restore()).toBe(2);
    expect(calls).toEqual([]);
    expect(fw.targets()).toEqual(['192.0.2.1', '2001:db8::1']);
    const timeout = fw.committed.get('blocklist|192.0.2.1')!.timeout!;
    expect(timeout).toBeGreaterThan(3590);
    expect(timeout).toBeLessThanOrEqual(3600);
    expect(fw.committed.get('blocklist|2001:db8::1')!.timeout).toBeNull();
    state.close();
  });

  it('a failed catch-up retries until the hub is back', async () => {
    const { state, log, applier } = setup();
    log.append('192.0.2.1');
    log.down = true;
    await applier.catchUp();
    expect(state.lastSeq()).toBe(0);
    log.down = false;
    await expect.poll(() => state.lastSeq(), { timeout: 2000 }).toBe(1);
    applier.stop();
  });

  it('a failed firewall commit keeps the batch and retries it', async () => {
    const { fw, log, applier } = setup();
    fw.failNext = 1;
    applier.live(log.append('192.0.2.1'));
    await expect.poll(() => fw.targets(), { timeout: 2000 }).toEqual(['192.0.2.1']);
  });

  it('kernelSeq follows successful commits only, and catches up after a retried one', async () => {
    const { state, fw, log, applier, committer } = setup();
    applier.live(log.append('192.0.2.1'));
    await committer.flush();
    expect(applier.kernelSeq).toBe(1);
    fw.failNext = 1;
    applier.live(log.append('192.0.2.2'));
    applier.live(log.append('192.0.2.3'));
    await applier.commit();
    // Recorded in the state (a restart re-applies it), not yet in the kernel.
    expect(state.lastSeq()).toBe(3);
    expect(applier.kernelSeq).toBe(1);
    expect(fw.targets()).toEqual(['192.0.2.1']);
    // The committer's own retry commits it; the applier's re-check sees it without a new decision.
    await expect.poll(() => applier.kernelSeq, { timeout: 2000 }).toBe(3);
    expect(fw.targets()).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    applier.stop();
  });
  it('during a catch-up, live decisions that follow in order cost no second fetch', async () => {
    const { state, fw, log, applier, committer } = setup();
    applier.live(log.append('192.0.2.1'));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const fetch = log.fetch.bind(log);
    log.fetch = async (since) => {
      const page = await fetch(since);
      await gate; // the answer is still on its way while the bus delivers more
      return page;
    };
    const running = applier.catchUp(); // the reconcile timer's pass, say
    for (let i = 2; i <= 6; i++) applier.live(log.append(`192.0.2.${i}`));
    release();
    await running;
    await committer.flush();
    expect(state.lastSeq()).toBe(6);
    expect(fw.targets()).toHaveLength(6);
    expect(log.calls).toEqual([1]);
  });

  it('a hole that opens during a catch-up still gets its own pass', async () => {
    const { state, log, applier } = setup();
    applier.live(log.append('192.0.2.1'));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const fetch = log.fetch.bind(log);
    let first = true;
    log.fetch = async (since) => {
      const page = await fetch(since);
      if (first) {
        first = false;
        await gate;
      }
      return page;
    };
    const running = applier.catchUp();
    log.append('192.0.2.2'); // published after the page above was read, never seen on the bus
    applier.live(log.append('192.0.2.3'));
    release();
    await running;
    await expect.poll(() => state.lastSeq(), { timeout: 2000 }).toBe(3);
    expect(log.calls.length).toBeGreaterThanOrEqual(2);
  });
});
