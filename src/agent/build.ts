import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentSection } from '../config/agent-section.js';
import type { RampartConfig } from '../config/schema.js';
import { Allowlist } from '../core/allowlist.js';
import { lockDataFolder } from '../core/data-lock.js';
import { ConfigError } from '../core/errors.js';
import { parseHostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import type { Firewall } from '../firewall/types.js';
import type { Source } from '../sources/types.js';
import { loadKeyPair, publicKeyFromText } from '../trust/keys.js';
import { readSecretFile } from '../trust/secret-file.js';
import { Agent, type AgentOptions } from './agent.js';
import { buildDetector } from './detector.js';
import { AGENT_FILES, agentDir, readEnrolment, readNodeToken } from './files.js';
import { HubApi } from './hub-api.js';
import type { MetricsListen } from './metrics-server.js';
import { protectedAddresses } from './protected.js';
import { AgentState } from './state.js';

export interface BuildAgentOptions {
  config: RampartConfig & { file?: string };
  /** DATA/agent/agent.yaml already read and validated (`rampart agent` does it off the thread). */
  enrol?: RampartConfig;
  dataDir: string;
  /** Extra log files followed with the configured (default: built-in) rules. */
  watch?: string[];
  /** `--firewall B`: overrides `firewall.backend`. */
  firewall?: string;
  log: Logger;
  version?: string;
  /** `--fail2ban-jails DIR`: also run the enabled jails of that fail2ban configuration. */
  fail2banJails?: string;
  /** Read watched files from their start when there is no stored position (tests, replays). */
  fromStart?: boolean;
  /** `--metrics-listen HOST:PORT`: overrides `agent.metrics.listen`. */
  metricsListen?: string;
  extra?: Partial<AgentOptions>;
}

export interface BuiltAgent {
  agent: Agent;
  name: string;
  fleet: string;
  hubUrl: string;
  firewall: Firewall;
  watching: string[];
  rules: string[];
}

/**
 * Assembles an agent from the config, the enrolment `rampart join` wrote (DATA/agent/agent.yaml,
 * node.key, node.token) and the other layers' factories. Nothing touches the network here.
 */
export async function buildAgent(o: BuildAgentOptions): Promise<BuiltAgent> {
  const dir = agentDir(o.dataDir);
  const enrolFile = join(dir, AGENT_FILES.config);
  if (!existsSync(enrolFile)) {
    throw new ConfigError(
      'this server has not joined a hub yet: on the hub run "rampart nodes add NAME", then here "rampart join TOKEN"',
      { file: enrolFile },
    );
  }
  const enrol = o.enrol ?? (await readEnrolment(enrolFile));
  const cfg = o.config;
  const a = { ...enrol.agent, ...definedOnly(cfg.agent) };
  const name = a.name;
  const hubUrl = a.hub;
  if (!name || !hubUrl || !a.hubPublicKey) {
    throw new ConfigError('agent.name, agent.hub and agent.hubPublicKey are required (run "rampart join")', {
      file: enrolFile,
      key: 'agent',
    });
  }
  const fleet = a.fleet ?? cfg.fleet ?? enrol.fleet ?? 'default';
  const hubKey = publicKeyFromText(a.hubPublicKey);
  const keys = loadKeyPair(dir, AGENT_FILES.key);
  const nodeToken = readNodeToken(o.dataDir);
  const allowlist = new Allowlist([...cfg.allowlist, ...a.allowlist]);
  const watch = [...a.watch, ...(o.watch ?? [])];

  const firewall = await makeFirewall(cfg, o.firewall, o.log);
  // Only the configured transport's modules are loaded (ADR 0060).
  const { loadTransport } = await import('../bus/from-config.js');
  const { encryptionKeyFromText } = await import('../trust/envelope.js');
  const bus = cfg.bus ?? enrol.bus;
  const transport = bus
    ? await loadTransport(
        // The hub's embedded broker knows nodes by name and node token; NATS and RabbitMQ
        // have their own accounts, configured in bus: (username/password, credsFile, URL).
        bus.type === 'nats' || bus.type === 'amqp'
          ? bus
          : {
              ...bus,
              username: bus.username ?? name,
              password: bus.password ?? (bus.passwordFile ? undefined : nodeToken),
            },
        { role: 'agent', fleet, node: name, logger: o.log, file: cfg.file },
      )
    : undefined;
  const encryptKey = bus?.encryptionKey ? encryptionKeyFromText(bus.encryptionKey) : undefined;

  const { rules, ruleNames } = await loadRules(cfg);
  const jails = o.fail2banJails ? await loadJails(o.fail2banJails, o.log) : undefined;
  if (jails) {
    rules.push(...jails.rules);
    ruleNames.push(...jails.rules.map((r) => r.name));
  }
  // The agent is built after the detector: the hook reaches it through this late binding.
  let built: Agent | undefined;
  const fleetCounting = a.fleetCounting && rules.some((r) => r.fleet !== undefined);
  const detector = buildDetector({
    rules,
    watch,
    allowlist,
    maxTrackedBytes: cfg.rules.trackerMemory,
    onWarning: (message) => o.log.warn({ message }, 'detection'),
    ...(fleetCounting
      ? { onBelowThreshold: (rule: string, ip: string) => built?.belowThreshold(rule, ip) }
      : {}),
  });
  const lock = await lockDataFolder(o.dataDir, 'agent');
  let state: AgentState;
  try {
    state = AgentState.open(dir);
  } catch (err) {
    await lock.release();
    throw err;
  }
  const sources: Source[] = [];
  if (a.fail2banLog.length > 0) {
    const { fail2banLogDetector } = await import('../compat/fail2ban/log-events.js');
    const { FileSource } = await import('../sources/file.js');
    const fromFail2ban = fail2banLogDetector({ paths: a.fail2banLog, bantime: a.fail2banBantime });
    const feed = detector.feed;
    detector.feed = (line) => fromFail2ban(line) ?? feed(line);
    sources.push(
      new FileSource({
        paths: a.fail2banLog,
        positions: state.positions,
        logger: o.log,
        name: 'fail2ban-log',
        fromStart: o.fromStart,
      }),
    );
  }
  if (watch.length > 0) {
    const { FileSource } = await import('../sources/file.js');
    sources.push(
      new FileSource({
        paths: watch,
        positions: state.positions,
        logger: o.log,
        name: 'watch',
        fromStart: o.fromStart,
      }),
    );
  }
  if (jails && jails.paths.length > 0) {
    const { FileSource } = await import('../sources/file.js');
    sources.push(
      new FileSource({
        paths: jails.paths,
        positions: state.positions,
        logger: o.log,
        name: 'fail2ban-jails',
        fromStart: o.fromStart,
      }),
    );
  }
  if (jails && jails.journals.length > 0) {
    const { JournaldSource } = await import('../sources/journald.js');
    for (const j of jails.journals) {
      sources.push(
        new JournaldSource({
          matches: j.matches,
          label: j.label,
          name: j.label,
          positions: state.positions,
          logger: o.log,
          fromStart: o.fromStart,
        }),
      );
    }
  }
  sources.push(...(await makeSources(cfg, state, o.log)));

  const agent = new Agent({
    name,
    fleet,
    state,
    firewall,
    hub: new HubApi(hubUrl, nodeToken, undefined, name),
    hubKey,
    privateKey: keys.privateKey,
    transport,
    sources,
    detector,
    allowlist,
    protected: await protectedAddresses([hubUrl, bus?.url], o.log),
    log: o.log,
    reconcile: await loadReconcile(),
    reconcileMs: a.reconcileInterval * 1000,
    heartbeatMs: a.heartbeatInterval * 1000,
    metrics: metricsListen(a.metrics, o.metricsListen, cfg.file),
    version: o.version,
    encryptKey,
    onClosed: () => lock.release(),
    ...(fleetCounting ? { fleetHits: { intervalMs: a.fleetInterval * 1000 } } : {}),
    ...o.extra,
  });
  built = agent;
  return { agent, name, fleet, hubUrl, firewall, watching: watch, rules: ruleNames };
}

/** `agent.metrics` (or `--metrics-listen`) as the listener wants it; undefined when off. */
function metricsListen(
  section: AgentSection['metrics'],
  flag: string | undefined,
  file: string | undefined,
): MetricsListen | undefined {
  const listen = flag ?? section?.listen;
  if (listen === undefined) return undefined;
  const { host, port } = parseHostPort(listen, flag ? '--metrics-listen' : 'agent.metrics.listen');
  let token = section?.token;
  if (section?.tokenFile) {
    token = readSecretFile(section.tokenFile, 'agent.metrics.tokenFile').trim();
    if (token.length < 16)
      throw new ConfigError(`${section.tokenFile} holds fewer than 16 characters`, {
        file,
        key: 'agent.metrics.tokenFile',
      });
  }
  return { host, port, ...(token ? { token } : {}) };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)),
  ) as Partial<T>;
}

/**
 * Built-in rules come from the build's snapshot (no YAML parser, no schema library); rule files
 * are read and checked with both.
 */
async function loadRules(cfg: RampartConfig) {
  const { snapshotBuiltinRule } = await import('../detect/builtin-snapshot.js');
  const opts = { aggressive: cfg.rules.aggressive };
  const rules = [];
  for (const n of cfg.rules.builtin) rules.push(await snapshotBuiltinRule(n, opts));
  if (cfg.rules.files.length > 0) {
    const { loadRulesFile } = await import('../detect/rules-file.js');
    rules.push(...cfg.rules.files.flatMap((f) => loadRulesFile(f, opts)));
  }
  return { rules, ruleNames: rules.map((r) => r.name) };
}

/** The firewall from `firewall:` (or `--firewall`); `auto` = nftables when root with nft, else dry-run. */
export async function makeFirewall(
  cfg: RampartConfig,
  override: string | undefined,
  log: Logger,
): Promise<Firewall> {
  // The section was validated with the rest of the config; `--firewall` was checked as a flag.
  // Only the configured backend's modules are loaded (ADR 0060).
  const { loadFirewall } = await import('../firewall/from-config.js');
  const section = { ...(cfg.firewall ?? { backend: 'auto' }), ...(override ? { backend: override } : {}) };
  return loadFirewall(section, { logger: log });
}

async function makeSources(cfg: RampartConfig, state: AgentState, log: Logger): Promise<Source[]> {
  if (cfg.sources.length === 0) return [];
  const { createSource } = await import('../sources/create.js');
  // Already validated (and transformed) by the config schema: build each one directly.
  return cfg.sources.map((c) => createSource(c, { positions: state.positions, logger: log }));
}

async function loadReconcile(): Promise<AgentOptions['reconcile']> {
  const { sync } = await import('../firewall/reconcile.js');
  // With a scan the backend can repair in place whatever the size; without one (spawned tools,
  // ipset, xt_recent) `auto` lists a small set and rebuilds a big one.
  return (fw, desired, scan) => sync(fw, desired, scan ? { scan, strategy: 'repair' } : {});
}

export function readVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version;
  } catch {
    return '0';
  }
}

async function loadJails(dir: string, log: Logger) {
  const { loadFail2banJailSet } = await import('../compat/fail2ban-jail.js');
  const set = loadFail2banJailSet(dir);
  for (const message of set.warnings) log.warn({ message }, 'fail2ban jails');
  return set;
}
