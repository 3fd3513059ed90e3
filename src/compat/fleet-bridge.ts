import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_FILES, agentDir, readNodeToken } from '../agent/files.js';
import { HubApi } from '../agent/hub-api.js';
import { rampartConfigSchema } from '../config/schema.js';
import type { Target } from '../core/address.js';
import { loadYamlFile } from '../core/config-file.js';
import type { Decision } from '../core/decision.js';
import type { DurationSeconds } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_SET } from '../firewall/staging.js';
import { seal } from '../trust/envelope.js';
import { loadKeyPair } from '../trust/keys.js';
import type { CompatMetrics } from './metrics.js';

export type BridgeDirection = 'to-fleet' | 'from-fleet' | 'both';

export function parseBridgeDirection(v: string | undefined): BridgeDirection | undefined {
  if (v === undefined) return undefined;
  if (v === 'to-fleet' || v === 'from-fleet' || v === 'both') return v;
  throw new ConfigError(`--bridge ${v}: expected to-fleet, from-fleet or both`);
}

/**
 * Carries a compatibility tool's bans into the fleet and the fleet's decisions back out, as an
 * enrolled node (the folder `rampart join` wrote): its bans go to the hub as signed reports, so
 * the fleet's allowlist, policy and rate limits apply to them as to any node's; the fleet's
 * decisions are read from the hub's log in order (`GET /v1/decisions?since=`), starting at the
 * head when the bridge starts, and those this bridge itself reported are not sent back.
 */
export class FleetBridge {
  private cursor = -1;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly o: {
      hub: HubApi;
      name: string;
      privateKey: KeyObject;
      log: Logger;
      metrics: CompatMetrics;
      tool: string;
    },
  ) {}

  static open(dataDir: string, tool: string, log: Logger, metrics: CompatMetrics): FleetBridge {
    const file = join(agentDir(dataDir), AGENT_FILES.config);
    if (!existsSync(file)) {
      throw new ConfigError('the bridge needs an enrolled node: run "rampart join TOKEN --data DIR" first', {
        file,
      });
    }
    const a = loadYamlFile(file, rampartConfigSchema).agent;
    if (!a?.name || !a.hub)
      throw new ConfigError('agent.name and agent.hub are required', { file, key: 'agent' });
    const keys = loadKeyPair(agentDir(dataDir), AGENT_FILES.key);
    return new FleetBridge({
      hub: new HubApi(a.hub, readNodeToken(dataDir)),
      name: a.name,
      privateKey: keys.privateKey,
      log,
      metrics,
      tool,
    });
  }

  /** Reports one ban to the hub; a refusal or an outage is logged and counted, never thrown. */
  async report(target: Target, rule: string, reason: string, duration: DurationSeconds): Promise<void> {
    const body = { target: target.text, rule, reason, hits: 1, duration, at: Date.now(), set: DEFAULT_SET };
    try {
      const answer = await this.o.hub.report(seal('report', body, this.o.name, this.o.privateKey));
      if (answer.result === 'refused') {
        this.o.metrics.dropped.inc({ tool: this.o.tool, reason: `fleet-${answer.refusal ?? 'refused'}` });
        this.o.log.warn({ target: target.text, reason: answer.reason }, 'bridge: the hub refused the ban');
      } else {
        this.o.metrics.handled.inc({ tool: this.o.tool, what: 'reported' });
      }
    } catch (err) {
      this.o.metrics.dropped.inc({ tool: this.o.tool, reason: 'fleet-unreachable' });
      this.o.log.error(
        { target: target.text, err: (err as Error).message },
        'bridge: could not report to the hub',
      );
    }
  }

  /** Calls `onDecision` for every new fleet decision (not our own), in `seq` order. */
  follow(onDecision: (d: Decision) => Promise<void> | void, pollMs = 1000): void {
    const tick = () => {
      if (this.closed || this.polling) return;
      this.polling = this.poll(onDecision).finally(() => {
        this.polling = undefined;
      });
    };
    tick();
    this.timer = setInterval(tick, pollMs);
  }

  /** Resolves after the next poll finished (tests). */
  async settled(): Promise<void> {
    await this.polling;
  }

  private async poll(onDecision: (d: Decision) => Promise<void> | void): Promise<void> {
    try {
      if (this.cursor < 0) {
        this.cursor = (await this.o.hub.health()).head;
        return;
      }
      const page = await this.o.hub.decisions(this.cursor, 1000);
      for (const d of [...page.decisions].sort((x, y) => x.seq - y.seq)) {
        if (d.seq <= this.cursor) continue;
        this.cursor = d.seq;
        if (d.origin === this.o.name) continue;
        await onDecision(d);
      }
      if (page.snapshot) this.cursor = page.head;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'bridge: cannot read the fleet decisions; will retry');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling;
  }
}
