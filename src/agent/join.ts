import { hostname } from 'node:os';
import { RampartError } from '../core/errors.js';
import { checkHubKey, decodeJoinToken } from '../trust/join-token.js';
import { loadOrCreateKeyPair, publicKeyToText } from '../trust/keys.js';
import { AGENT_FILES, agentDir, type Enrolment, writeEnrolment } from './files.js';
import { HubApi } from './hub-api.js';

/**
 * Enrols this server: creates (or reuses) its Ed25519 key, proves the token's one-time secret to
 * the hub (`POST /v1/join`), checks the hub key against the token's fingerprint and pins it, then
 * writes DATA/agent/agent.yaml and node.token.
 */
export async function joinFleet(opts: {
  token: string;
  dataDir: string;
  name?: string;
  /** More hub URLs (hubs sharing one store) tried after the token's, kept in agent.yaml. */
  hubs?: string[];
}): Promise<Enrolment & { file: string }> {
  const token = decodeJoinToken(opts.token);
  const hub = [token.url, ...(opts.hubs ?? []).filter((u) => u !== token.url)].join(',');
  const name = opts.name ?? token.name ?? hostname();
  const keys = loadOrCreateKeyPair(agentDir(opts.dataDir), AGENT_FILES.key);
  const answer = await HubApi.join(hub, {
    token: opts.token.trim(),
    name,
    publicKey: publicKeyToText(keys.publicKey),
  });
  checkHubKey(token, answer.hubPublicKey);
  if (!answer.nodeToken || !answer.bus?.url)
    throw new RampartError('E_HTTP', 'the hub answered the join without a node token or bus');
  const e: Enrolment = {
    name,
    hub,
    fleet: answer.fleet || 'default',
    hubPublicKey: answer.hubPublicKey,
    bus: { type: answer.bus.type, url: reachableBusUrl(answer.bus.url, token.url) },
  };
  const file = writeEnrolment(opts.dataDir, e, answer.nodeToken);
  return { ...e, file };
}

/**
 * A hub that listens on a wildcard or loopback address reports that address for its broker; a
 * remote node reaches it at the host it used for the API instead.
 */
export function reachableBusUrl(busUrl: string, hubUrl: string): string {
  let bus: URL;
  try {
    bus = new URL(busUrl);
  } catch {
    return busUrl;
  }
  const hubHost = new URL(hubUrl).hostname;
  if (
    ['0.0.0.0', '[::]', '::', 'localhost', '127.0.0.1', '[::1]'].includes(bus.hostname) &&
    bus.hostname !== hubHost
  ) {
    bus.hostname = hubHost;
  }
  return bus.toString().replace(/\/$/, '');
}
