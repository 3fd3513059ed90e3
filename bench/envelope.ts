import { verify } from 'node:crypto';
import { DropCounter, generateEncryptionKey, open, ReplayCache, seal } from '../src/trust/envelope.js';
import { generateKeyPair } from '../src/trust/keys.js';
import type { Emit } from './list.js';

/**
 * Envelope seal/open rate for a typical decision, side by side with a bare Ed25519 verify of the
 * same bytes (the floor: what any signed scheme pays). The goal it serves: each agent must open
 * at least 10,000 decisions/s to keep up with the fleet's target ban rate.
 */
export default async function envelopeBench(emit: Emit): Promise<void> {
  const hub = generateKeyPair();
  const decision = {
    id: '0f8e4b1c-1d2e-4f3a-9b8c-7d6e5f4a3b2c',
    seq: 123456,
    action: 'ban',
    target: '203.0.113.77',
    family: 4,
    duration: 3600,
    expiresAt: 1763733600000,
    reason: 'sshd: 5 failures in 600s',
    rule: 'sshd',
    origin: 'web1',
    createdAt: 1763730000000,
    set: 'blocklist',
  };
  const N = 20_000;
  const key = generateEncryptionKey();
  for (const encrypted of [false, true]) {
    const encryptKey = encrypted ? key : undefined;
    let t0 = process.hrtime.bigint();
    const msgs: Buffer[] = [];
    for (let i = 0; i < N; i++)
      msgs.push(seal('decision', { ...decision, seq: i }, 'hub', hub.privateKey, { encryptKey }));
    const sealS = Number(process.hrtime.bigint() - t0) / 1e9;

    const replay = new ReplayCache();
    const drops = new DropCounter();
    const now = Date.now();
    t0 = process.hrtime.bigint();
    let ok = 0;
    for (const m of msgs) {
      const r = open(m, {
        keyFor: () => hub.publicKey,
        replay,
        drops,
        now: () => now,
        ...(encrypted ? { decryptKey: key } : {}),
      });
      if (r.ok) ok++;
    }
    const openS = Number(process.hrtime.bigint() - t0) / 1e9;
    if (ok !== N) throw new Error(`opened ${ok} of ${N}: ${JSON.stringify(drops.snapshot())}`);

    // The floor: verifying the same signatures over pre-built inputs, no parsing at all.
    const inputs = msgs.map((m) => {
      const w = JSON.parse(m.toString());
      const enc = w.enc ? `${w.enc.alg}:${w.enc.iv}:${w.enc.tag}` : '';
      return {
        data: Buffer.from(`rampart-envelope|1|${w.kind}|${w.from}|${w.ts}|${w.id}|${enc}|${w.body}`),
        sig: Buffer.from(w.sig, 'base64'),
      };
    });
    t0 = process.hrtime.bigint();
    for (const x of inputs)
      if (!verify(null, x.data, hub.publicKey, x.sig)) throw new Error('floor verify failed');
    const floorS = Number(process.hrtime.bigint() - t0) / 1e9;

    emit({
      bench: 'envelope',
      encrypted,
      messages: N,
      bytesPerMessage: msgs[0]!.length,
      sealPerSecond: Math.round(N / sealS),
      openPerSecond: Math.round(N / openS),
      bareVerifyPerSecond: Math.round(N / floorS),
      openVsBareVerify: +(floorS / openS).toFixed(3),
      openVsGoal10k: +(N / openS / 10_000).toFixed(2),
    });
  }

  // One signature per batch: the hub can seal a burst of decisions as one envelope, which is how
  // a flood stays above the goal when Ed25519 verify alone is below it.
  const batch = 100;
  const batches: Buffer[] = [];
  for (let b = 0; b < N / batch; b++) {
    const body = Array.from({ length: batch }, (_, i) => ({ ...decision, seq: b * batch + i }));
    batches.push(seal('decisions', body, 'hub', hub.privateKey));
  }
  const replay = new ReplayCache();
  const t0 = process.hrtime.bigint();
  let decisions = 0;
  for (const m of batches) {
    const r = open(m, { keyFor: () => hub.publicKey, replay, maxBytes: 1 << 20 });
    if (r.ok) decisions += (r.env.body as unknown[]).length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (decisions !== N) throw new Error(`batched: opened ${decisions} of ${N}`);
  emit({
    bench: 'envelope-batched',
    decisionsPerEnvelope: batch,
    bytesPerEnvelope: batches[0]!.length,
    decisionsPerSecond: Math.round(N / s),
    vsGoal10k: +(N / s / 10_000).toFixed(2),
  });
}
