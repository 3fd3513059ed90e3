import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action } from '../exit.js';
import { addOptions, type OptionSpec } from '../option-specs.js';
import { checkFirewallFlag } from '../server-options.js';

/** `rampart agent`'s options: registered with commander, and read without it (agent-args.ts). */
export const AGENT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: '--config',
    value: 'file',
    description: 'rampart.yaml (default: /etc/rampart/rampart.yaml if present)',
  },
  {
    flag: '--data',
    value: 'dir',
    description: 'data folder holding agent/ (default: $RAMPART_DATA, /var/lib/rampart as root)',
  },
  {
    flag: '--watch',
    value: 'path',
    description: 'follow this log file with the rules (repeatable)',
    repeatable: true,
  },
  { flag: '--firewall', value: 'backend', description: 'firewall backend (nftables, ipset, dry-run, ...)' },
  {
    flag: '--bus',
    value: 'url',
    description: 'bus to take decisions from: mqtt://, nats:// or amqp:// URL, several comma-separated',
  },
  {
    flag: '--fail2ban-jails',
    value: 'dir',
    description: 'also run the enabled jails of this fail2ban configuration (e.g. /etc/fail2ban)',
  },
  { flag: '--from-start', description: 'read watched files that have no stored position from their start' },
  {
    flag: '--metrics-listen',
    value: 'host:port',
    description: 'serve Prometheus /metrics here (agent.metrics.listen), e.g. 127.0.0.1:9780',
  },
];

export interface AgentOptions {
  config?: string;
  data?: string;
  watch: string[];
  firewall?: string;
  fromStart?: boolean;
  bus?: string;
  fail2banJails?: string;
  metricsListen?: string;
}

export function register(program: Command): void {
  addOptions(
    program
      .command('agent')
      .description(
        "Run the agent: apply the fleet's decisions to this server's firewall and report what its logs show",
      ),
    AGENT_OPTIONS,
  ).action(action(runAgent));
}

/** The agent itself, once its options are read (by commander, or by agent-args.ts). */
export async function runAgent(opts: AgentOptions): Promise<void> {
  const [{ loadAgentConfig }, { buildAgent, readVersion }, { rootAbort, aborted }, { createLogger }] =
    await Promise.all([
      import('../../config/agent-config.js'),
      import('../../agent/build.js'),
      import('../../agent/lifecycle.js'),
      import('../../core/logger.js'),
    ]);
  await checkFirewallFlag(opts.firewall);
  const { config, dataDir, enrol } = await loadAgentConfig({
    file: opts.config,
    bus: opts.bus,
    data: opts.data,
    defaultData: defaultDataDir(),
  });
  const log = createLogger({ stream: 'stdout', name: 'rampart-agent' });
  const built = await buildAgent({
    config,
    ...(enrol ? { enrol } : {}),
    dataDir,
    watch: opts.watch,
    firewall: opts.firewall,
    log,
    version: readVersion(),
    fromStart: opts.fromStart,
    fail2banJails: opts.fail2banJails,
    metricsListen: opts.metricsListen,
    extra: { idleMemory: true },
  });
  // Modules are loaded: restoring a million bans at start needs the optimising compiler.
  (await import('../../core/startup-tiering.js')).releaseStartupHold();
  const ac = rootAbort();
  await built.agent.start(ac.signal);
  log.info(
    {
      node: built.name,
      fleet: built.fleet,
      hub: built.hubUrl,
      firewall: built.firewall.name,
      watching: built.watching,
      rules: built.rules,
      metrics: built.agent.metricsUrl,
    },
    'agent running',
  );
  await aborted(ac.signal);
  await built.agent.close();
  log.info('agent stopped');
  // Shutdown is done and the state closed; a socket stuck connecting to a hub that is gone
  // (packets dropped, not refused) must not keep the process alive for minutes.
  setTimeout(() => process.exit(), 200).unref();
}
