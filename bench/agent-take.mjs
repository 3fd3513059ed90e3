// One agent's bus path in this process, for side-by-side builds (ADR 0044): sealed `decisions`
// envelopes of 500 → Agent (verify, state, staging) → nftables through libnftables → kernel, and
// the process's CPU (every thread) per decision. Run inside a network namespace, as root:
//   ip netns add X && ip netns exec X node --max-semi-space-size=4 bench/agent-take.mjs DIST [N]
// DIST is a built `dist` folder (this tree's, or an older build's copy), N decisions (default 40,000;
// the first 4,000 warm up and are not counted; AGENT_TAKE_WARM=500 leaves V8's compilation of the
// path in the count, as in a freshly started agent). AGENT_TAKE_FIREWALL=null stages into a firewall that
// drops every commit: the intake alone, without the kernel's share (and its timing noise).
// AGENT_TAKE_IDLE=1: with the idle-memory keeper `rampart agent` runs (ADR 0056), and 2.5 s after
// start before the first decision, so its start-up collection is behind it, as in a fleet (ADR 0068).
// AGENT_TAKE_ALLOC=1: also the bytes the counted part allocated per decision (V8's sampling heap
// profiler, collected objects included) and the functions that allocated most of them.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'dist');
const total = Number(process.argv[3] ?? 40_000);
const WARM = Number(process.env.AGENT_TAKE_WARM ?? 4000);
// AGENT_TAKE_PER_ENVELOPE: decisions per envelope (the hub seals at most DECISIONS_PER_ENVELOPE).
const PER_ENVELOPE = Number(process.env.AGENT_TAKE_PER_ENVELOPE ?? 500);
const { Agent } = await import(`${dist}/agent/agent.js`);
const { AgentState } = await import(`${dist}/agent/state.js`);
const { Allowlist } = await import(`${dist}/core/allowlist.js`);
const { silentLogger } = await import(`${dist}/core/logger.js`);
const { seal } = await import(`${dist}/trust/envelope.js`);
const { createFirewall } = await import(`${dist}/firewall/create.js`);
// AGENT_TAKE_FAMILY=6: IPv6 hosts (2001:db8:X:Y::1, as the transports bench bans) instead of IPv4.
const V6 = process.env.AGENT_TAKE_FAMILY === '6';
// AGENT_TAKE_PACKED=1: `decisions-packed` envelopes (ADR 0052; builds that have them).
const PACKED =
  process.env.AGENT_TAKE_PACKED === '1' ? await import(`${dist}/core/packed-decisions.js`) : undefined;

const hub = generateKeyPairSync('ed25519');
const node = generateKeyPairSync('ed25519');
const dir = mkdtempSync(join(tmpdir(), 'rampart-agent-take-'));
let handler;
const transport = {
  name: 'direct',
  connect: async () => {},
  publish: async () => {},
  subscribe: async (_filter, h) => {
    handler = h;
  },
  onStatus: () => {},
  close: async () => {},
};
/** Stages as a backend does (one object per change) and forgets each batch at commit. */
class NullFirewall {
  name = 'null';
  staged = [];
  async init() {}
  add(target, timeout, set = 'blocklist') {
    this.staged.push({ op: 'add', target, set, timeout, at: Date.now() });
  }
  delete(target, set = 'blocklist') {
    this.staged.push({ op: 'delete', target, set, timeout: null, at: Date.now() });
  }
  pending() {
    return this.staged.length;
  }
  async commit() {
    const added = this.staged.length;
    this.staged = [];
    this.committed += added;
    return { added, deleted: 0 };
  }
  committed = 0;
  async list() {
    return { length: this.committed };
  }
  async shutdown() {}
}
const firewall =
  process.env.AGENT_TAKE_FIREWALL === 'null'
    ? new NullFirewall()
    : createFirewall({ backend: 'nftables', driver: 'library' });
const agent = new Agent({
  name: 'take',
  fleet: 'default',
  state: AgentState.open(dir),
  firewall,
  hub: { decisions: async () => ({ decisions: [], head: 0 }), report: async () => ({}), abort() {} },
  hubKey: hub.publicKey,
  privateKey: node.privateKey,
  transport,
  allowlist: new Allowlist([]),
  log: silentLogger(),
  reconcileMs: 3_600_000,
  heartbeatMs: 3_600_000,
  idleMemory: process.env.AGENT_TAKE_IDLE === '1',
});
await agent.start();
if (process.env.AGENT_TAKE_IDLE === '1') await new Promise((r) => setTimeout(r, 2500));

// Decisions as the hub publishes them (core/decision.ts fields), sealed beforehand: only the
// agent's side is timed.
const now = Date.now();
// AGENT_TAKE_SCATTER=1: addresses spread over the space (an odd multiplier, a bijection on 24 bits
// for IPv6 and 16 for IPv4), as a flood's are, instead of counting up.
const SCATTER = process.env.AGENT_TAKE_SCATTER === '1';
function address(i) {
  const k = SCATTER ? Math.imul(i, 0x9e3779b1) & (V6 ? 0xffffff : 0xffff) : i;
  return V6
    ? `2001:db8:${(k >> 16).toString(16)}:${(k & 0xffff).toString(16)}::1`
    : `198.18.${k >> 8}.${k & 255}`;
}
const envelopes = [];
for (let at = 0; at < total; at += PER_ENVELOPE) {
  const body = [];
  for (let i = at; i < Math.min(total, at + PER_ENVELOPE); i++)
    body.push({
      id: `d${i.toString(16).padStart(30, '0')}`,
      seq: i + 1,
      action: 'ban',
      target: address(i),
      family: V6 ? 6 : 4,
      duration: 3600,
      expiresAt: now + 3_600_000,
      reason: 'bench',
      rule: 'manual',
      origin: 'operator',
      createdAt: now,
      set: 'blocklist',
    });
  envelopes.push(
    PACKED
      ? seal(PACKED.PACKED_DECISIONS, PACKED.packDecisions(body), 'hub', hub.privateKey)
      : seal('decisions', body, 'hub', hub.privateKey),
  );
}

async function feed(list) {
  // As the bus does: one envelope per message, the next while the previous commit may still run.
  await Promise.all(list.map((env) => handler('t', env)));
  await agent.committer.flush();
}
const warm = WARM / PER_ENVELOPE;
await feed(envelopes.slice(0, warm));
const alloc = process.env.AGENT_TAKE_ALLOC === '1' ? await allocSampler() : undefined;
const cpu0 = process.cpuUsage();
await feed(envelopes.slice(warm));
const cpu = process.cpuUsage(cpu0);
const allocated = await alloc?.stop(total - WARM);
const counted = total - WARM;
const listed = await firewall.list('blocklist');
process.stdout.write(
  `${JSON.stringify({
    bench: 'agent-take',
    firewall: firewall.name,
    dist,
    packed: PACKED !== undefined,
    decisions: counted,
    applied: agent.applier.stats.applied,
    inKernel: listed.length,
    cpuUsPerDecision: Number(((cpu.user + cpu.system) / counted).toFixed(2)),
    systemUsPerDecision: Number((cpu.system / counted).toFixed(2)),
    ...allocated,
  })}\n`,
);
await agent.close();
rmSync(dir, { recursive: true, force: true });

/** V8's sampling heap profiler over the counted part: bytes per decision, in all and by function. */
async function allocSampler() {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((res, rej) => session.post(method, params, (err, r) => (err ? rej(err) : res(r))));
  await post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async stop(n) {
      const { profile } = await post('HeapProfiler.stopSampling');
      session.disconnect();
      const by = new Map();
      let all = 0;
      const walk = (node) => {
        const f = node.callFrame;
        const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '')}`;
        by.set(key, (by.get(key) ?? 0) + node.selfSize);
        all += node.selfSize;
        for (const c of node.children) walk(c);
      };
      walk(profile.head);
      const top = [...by].sort((a, b) => b[1] - a[1]).slice(0, 12);
      return {
        allocatedBytesPerDecision: Math.round(all / n),
        allocatedBytesByFunction: Object.fromEntries(top.map(([k, v]) => [k, Math.round(v / n)])),
      };
    },
  };
}
