import { describe, expect, it } from 'vitest';
import {
  loadClusterConfig,
  monitorConfig,
  publisherConfig,
  subscriberConfig,
} from '../../../src/compat/fail2ban-zmq-tools/config.js';
import { ConfigError } from '../../../src/core/errors.js';
import { tempDir } from '../tmp.js';

const tmp = tempDir('f2bconf');

/** The shipped example, as operators have it (inline comments included). */
const SHIPPED = `# CONFIGURATION FILE FOR fail2ban-cluster
[monitor]
pidfile = /var/run/fail2ban-monitor.pid
zmqreplyserver = tcp://f2b.example.org:5678
fail2banlogpath = /var/log/fail2ban.log

# If the Publisher demands authentication
auth = true
authtoken = ASK_FOR_A_TOKEN # from the publisher's admin

[subscriber]
zmqpublisherurl = tcp://f2b.example.org:5680
zmqprefixfilter = "" #empty prefix filter by default.
subscriberaction = log

[publisher]
broadcasterbindurl = tcp://*:5680   # address to which subscribers will connect
replybindurl = tcp://*:5678      # address to which Monitors will send messages
auth = true # demand auth?
authtoken: IF_YOU_RUN_YOUR_OWN
`;

describe('fail2ban-cluster.conf', () => {
  it('reads the shipped example as the original does: no inline comments stripped', () => {
    const warnings: string[] = [];
    const cfg = loadClusterConfig(tmp.write('shipped.conf', SHIPPED));
    const m = monitorConfig(cfg, (w) => warnings.push(w));
    // The token is the whole value: an original monitor sends exactly this.
    expect(m).toMatchObject({
      replyServer: 'tcp://f2b.example.org:5678',
      logPath: '/var/log/fail2ban.log',
      auth: true,
      token: "ASK_FOR_A_TOKEN # from the publisher's admin",
    });
    const p = publisherConfig(cfg, (w) => warnings.push(w));
    // `auth = true # demand auth?` is not "true" to the original: authentication is off.
    expect(p).toMatchObject({ broadcastUrl: 'tcp://*:5680', replyUrl: 'tcp://*:5678', auth: false });
    expect(subscriberConfig(cfg)).toMatchObject({
      publisherUrl: 'tcp://f2b.example.org:5680',
      action: 'log',
    });
    expect(warnings.join('\n')).toMatch(
      /shipped\.conf:\d+: broadcasterbindurl: ignoring the text after "tcp:\/\/\*:5680"/,
    );
    expect(warnings.join('\n')).toMatch(
      /auth: "true # demand auth\?" is not exactly "true", so authentication is OFF/,
    );
  });

  it('names the file, line and key of a mistake', () => {
    const bad = (text: string, read: (c: ReturnType<typeof loadClusterConfig>) => unknown) => {
      try {
        read(loadClusterConfig(tmp.write('bad.conf', text)));
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad('[monitor]\nauth = false\n', monitorConfig)).toMatch(
      /bad\.conf: zmqreplyserver: \[monitor\] needs "zmqreplyserver"/,
    );
    expect(
      bad('[subscriber]\nzmqpublisherurl = tcp://h:1\nsubscriberaction = iptables\n', subscriberConfig),
    ).toMatch(/bad\.conf:3: subscriberaction: "iptables" is not one of log, fail2banclient, firewall/);
    expect(
      bad('[publisher]\nreplybindurl = h:1\nbroadcasterbindurl = tcp://*:1\nauth = false\n', publisherConfig),
    ).toMatch(/bad\.conf:2: replybindurl: "h:1" is not a ZeroMQ endpoint/);
    expect(bad('[monitor]\nauth = true\nauth = false\n', monitorConfig)).toMatch(
      /bad\.conf:3: auth: option appears twice/,
    );
    expect(bad('no section\n', monitorConfig)).toMatch(/bad\.conf:1/);
  });
});
