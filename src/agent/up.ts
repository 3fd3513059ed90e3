import { loadConfig } from '../config/schema.js';
import type { Decision } from '../core/decision.js';
import { createLogger } from '../core/logger.js';
import { loadRulesFile } from '../detect/rules-file.js';
import { hubStartOptions } from '../hub/config.js';
import { withFleetDefaults } from '../hub/fleet-policy.js';
import { startHub } from '../hub/hub.js';
import type { SourceConfig } from '../sources/create.js';
import { checkpointOffThread } from '../store/open-sqlite.js';
import { buildAgent, readVersion } from './build.js';
import { aborted, rootAbort } from './lifecycle.js';
import { findLocalLog, type LocalLog } from './local-log.js';
import { ensureLocalEnrolment } from './self-enrol.js';

export interface UpOptions {
  config?: string;
  dataDir?: string;
  defaultDataDir: string;
  listen?: string;
  apiPort?: number;
  brokerPort?: number;
  watch?: string[];
  firewall?: string;
  /** `--fail2ban-jails DIR`: also run that fail2ban configuration's enabled jails. */
  fail2banJails?: string;
  /** Read the local auth log / journald (default true). */
  authLog?: boolean;
  /** Stops the run instead of SIGINT/SIGTERM (tests, embedding). */
  signal?: AbortSignal;
  /** Human-readable banner goes here (default stderr). */
  out?: (text: string) => void;
}

/**
 * `rampart up`: a hub and an agent in one process on the embedded defaults. The agent enrols
 * itself at first start like any other node, so the local server is one node of the fleet and a
 * second server joins the same way (`rampart nodes add web2`).
 */
export async function runUp(o: UpOptions): Promise<void> {
  const out = o.out ?? ((t: string) => process.stderr.write(t));
  const cfg = loadConfig(o.config);
  const log = createLogger({ stream: 'stdout', name: 'rampart' });
  const dataDir = o.dataDir ?? cfg.data ?? o.defaultDataDir;
  const ac = o.signal ? undefined : rootAbort();
  const signal = o.signal ?? ac!.signal;

  const hubOptions = hubStartOptions(cfg, {
    dataDir,
    listen: o.listen,
    apiPort: o.apiPort,
    brokerPort: o.brokerPort,
  });
  // The local agent's own rule files may set fleet: thresholds the hub should count by.
  const own = cfg.rules.files.flatMap((f) => loadRulesFile(f, { aggressive: cfg.rules.aggressive }));
  // The hub's log and the local agent's state are checkpointed off the thread that bans (ADR 0070).
  checkpointOffThread();
  const hub = await startHub({ ...hubOptions, policy: withFleetDefaults(hubOptions.policy, own), log });
  try {
    const { name, enrolled } = await ensureLocalEnrolment({
      dataDir,
      hubUrl: hub.url,
      adminToken: hub.adminToken,
    });
    const local: LocalLog = o.authLog === false ? { kind: 'none' } : findLocalLog();
    const watch = [...(o.watch ?? [])];
    const extraSources: SourceConfig[] = [];
    if (local.kind === 'file') watch.push(local.path);
    // OpenSSH's unit is ssh.service on Debian, sshd.service elsewhere; journalctl ORs them.
    if (local.kind === 'journald')
      extraSources.push({ type: 'journald', name: 'journald', units: ['ssh.service', 'sshd.service'] });
    const built = await buildAgent({
      config: { ...cfg, sources: [...cfg.sources, ...extraSources] },
      dataDir,
      watch,
      firewall: o.firewall,
      log,
      version: readVersion(),
      fail2banJails: o.fail2banJails,
      // This node's reports go to the hub object in this process: sealing, an HTTP round trip
      // over loopback and a signature check cost more CPU than the local ban they follow.
      extra: {
        handReport: (body) => hub.core.reportInProcess(name, body),
        dropHeldCopies: hub.bus.name === 'mqtt-embedded',
      },
    });
    await built.agent.start(signal);
    // The hub is in this process: its decisions reach the local agent as they are appended, not
    // after a publish, a broker hop and a signature check (an operator's ban was waiting on all
    // three). The bus still delivers them; the agent drops those copies by seq.
    // Gathered until the end of the hub's append (a microtask): a bulk append is one transaction.
    let handed: Decision[] = [];
    // The commit that will hold every decision handed over so far: an operator's ban answers after it.
    let committed: Promise<void> = Promise.resolve();
    hub.core.localEnforcement = () => committed;
    const unfollow = hub.onDecision((d) => {
      if (handed.push(d) > 1) return;
      // The commit's turn is taken now, ahead of the hub's publish (scheduled after its listeners
      // return), so sealing and sending the decision over the bus waits for the kernel, not the
      // other way round. By the time it runs the microtask below has staged the decisions.
      committed = built.agent.committer.schedule();
      queueMicrotask(() => {
        const list = handed;
        handed = [];
        built.agent.applyDecisions(list);
      });
    });

    const dry = built.firewall.name === 'dry-run';
    const lines = [
      '',
      `rampart is up (fleet "${hub.fleet}", node "${name}"${enrolled ? ', enrolled now' : ''})`,
      `  API:      ${hub.url}   (admin token in ${dataDir}/hub/admin.token)`,
      `  dashboard: ${hub.url}/   (sign in with the admin token, or hub/viewer.token to only look)`,
      `  broker:   ${hub.busInfo.type} ${hub.busInfo.url}`,
      `  data:     ${dataDir}`,
      dry
        ? '  firewall: DRY-RUN: bans are logged, NOT enforced (run as root with nftables installed to enforce)'
        : `  firewall: ${built.firewall.name} (table inet rampart)`,
      `  watching: ${describeSources(local, o.watch ?? [], cfg.sources.length)}`,
      `  rules:    ${built.rules.join(', ') || 'none'}`,
      '',
      '  enrol another server:  rampart nodes add web2   (then on web2: rampart join <token>)',
      '  ban by hand:           rampart ban 192.0.2.1 --for 1h      list: rampart list',
      dry
        ? '  stop:                  Ctrl-C (a restart resumes)'
        : '  stop:                  Ctrl-C (bans stay in the kernel until they expire; a restart resumes)',
      '',
    ];
    if (local.kind === 'none' && (o.watch ?? []).length === 0 && cfg.sources.length === 0) {
      lines.splice(
        8,
        0,
        '  NOTE: no log source found (no /var/log/auth.log, no journalctl): running as a hub and enforcer only',
      );
    }
    out(`${lines.join('\n')}\n`);
    await aborted(signal);
    out('rampart: shutting down\n');
    unfollow();
    hub.core.localEnforcement = undefined;
    await built.agent.close();
  } finally {
    await hub.close();
  }
}

function describeSources(
  local: ReturnType<typeof findLocalLog>,
  watch: string[],
  configured: number,
): string {
  const parts: string[] = [];
  if (local.kind === 'file') parts.push(local.path);
  if (local.kind === 'journald') parts.push('journald (sshd)');
  parts.push(...watch);
  if (configured > 0) parts.push(`${configured} configured source(s)`);
  return parts.length > 0 ? parts.join(', ') : 'nothing';
}
