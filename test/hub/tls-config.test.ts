import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rampartConfigSchema } from '../../src/config/schema.js';
import { hubStartOptions, resolveHubSection } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub } from './helpers.js';

const req = requirements('hub API over TLS', ['cmd:openssl']);
const dir = mkdtempSync(join(tmpdir(), 'rampart-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function get(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe.skipIf(req.skip)('hub API over TLS', () => {
  it('serves https with the given certificate and advertises an https URL', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const args = 'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1';
    execFileSync(
      'openssl',
      [...args.split(' '), '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
      {
        stdio: 'ignore',
      },
    );
    const t = await startTestHub({ tls: { cert, key } });
    try {
      expect(t.hub.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await get(`${t.hub.url}/v1/health`, readFileSync(cert));
      expect(r).toMatchObject({ status: 200 });
      expect(JSON.parse(r.body)).toEqual({ ok: true, head: 0 });
    } finally {
      await t.close();
    }
  });
});

describe('hub startup errors and config', () => {
  it('missing TLS files and a taken API port are one clear error, and leave nothing listening', async () => {
    const data = mkdtempSync(join(dir, 'd-'));
    await expect(
      startHub({ dataDir: data, apiPort: 0, brokerPort: 0, tls: { cert: '/nope.pem', key: '/nope.key' } }),
    ).rejects.toThrow(/cannot read TLS certificate or key/);
    const first = await startTestHub();
    try {
      const port = Number(new URL(first.hub.url).port);
      await expect(startHub({ dataDir: data, apiPort: port, brokerPort: 0 })).rejects.toThrow(
        new RegExp(
          `hub API cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use; pass --port`,
        ),
      );
      // The failed start released its broker and store: a second try on a free port works.
      const ok = await startHub({ dataDir: data, apiPort: 0, brokerPort: 0 });
      await ok.close();
      await ok.close(); // idempotent
    } finally {
      await first.close();
    }
  });

  it('resolves the hub: section and names hub.KEY in errors', () => {
    const r = resolveHubSection({
      port: 0,
      retention: '2d',
      policy: { bantime: '10m', maxBantime: 'permanent', multiplier: 3 },
    });
    expect(r).toMatchObject({
      port: 0,
      retentionMs: 2 * 86_400_000,
      policy: { bantime: 600, maxBantime: null, multiplier: 3 },
    });
    expect(() => resolveHubSection({ policy: { bantime: 'soon' } }, '/etc/r.yaml')).toThrow(
      /\/etc\/r\.yaml: hub\.policy\.bantime: .*not a duration/,
    );
    expect(() => resolveHubSection({ prot: 1 }, 'f.yaml')).toThrow(/hub: .*prot/);
    expect(() => resolveHubSection({ port: 70000 })).toThrow(/hub\.port/);
  });

  it('flags override the file; a bad bus section names bus.KEY', () => {
    const cfg = {
      ...rampartConfigSchema.parse({
        fleet: 'prod',
        hub: { listen: '0.0.0.0', port: 9000 },
        allowlist: ['10.0.0.0/8'],
      }),
      file: 'r.yaml',
    };
    expect(hubStartOptions(cfg, { dataDir: '/d', apiPort: 0 })).toMatchObject({
      dataDir: '/d',
      fleet: 'prod',
      listen: '0.0.0.0',
      apiPort: 0,
      bus: { type: 'embedded' },
      allowlist: ['10.0.0.0/8'],
    });
    // The file loader validates too; this checks the options builder on its own.
    const bad = { ...rampartConfigSchema.parse({}), bus: { type: 'mqtt' } as never, file: 'r.yaml' };
    expect(() => hubStartOptions(bad, { dataDir: '/d' })).toThrow(/r\.yaml: bus\.url: .*mqtt:\/\//);
  });
});
