import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { DecisionInput } from '../../src/store/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { cli, inKernelSet, type Proc, rampart, removeDir, startNftAgent, tempDir, until } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const req = requirements('dashboard in a real browser', ['netns', 'cmd:nft', `file:${CHROMIUM}`]);

const MINUTE = 60_000;
const RULES = ['sshd', 'nginx-botsearch', 'postfix-sasl', 'dovecot'];
const ORIGINS = ['web1', 'web2', 'mail1', 'operator'];

/**
 * Three hours of earlier bans, planted in the hub's store before it starts (as a hub that had been
 * running would have them): bursts of attacks on a background of scans, from documentation ranges.
 */
function history(now: number): DecisionInput[] {
  const out: DecisionInput[] = [];
  let n = 0;
  for (let m = 180; m >= 1; m--) {
    const burst = m % 47 < 6 ? 12 + ((m * 7) % 9) : 0;
    const count = 1 + ((m * 13) % 4) + burst;
    for (let i = 0; i < count; i++, n++) {
      const at = now - m * MINUTE + i * 1000;
      const target =
        n < 250 ? `203.0.113.${n + 1}` : `2001:db8:${(n >> 8).toString(16)}::${(n & 255).toString(16)}`;
      const rule = RULES[(n * 7) % RULES.length]!;
      out.push({
        action: 'ban',
        target,
        family: target.includes(':') ? 6 : 4,
        duration: 86_400,
        expiresAt: at + 86_400_000,
        reason: `${rule}: ${3 + (n % 5)} failures in 10m`,
        rule: rule,
        origin: ORIGINS[(n * 3) % ORIGINS.length]!,
        createdAt: at,
        set: 'blocklist',
      });
    }
  }
  return out;
}

/**
 * The dashboard end to end: a hub and an agent enforcing with nftables in namespaces, Debian's
 * Chromium driven by playwright-core in the hub's namespace. A ban typed in the page drops a real
 * TCP connection from a third namespace; unbanning it from the page lets it through again.
 */
describe.skipIf(req.skip)('dashboard in a real browser against a fleet enforcing in nftables', () => {
  let lan: Lan;
  let hubHost: Host;
  let agentHost: Host;
  let attacker: Host;
  let hubDir: string;
  let agentDir: string;
  let browser: Browser | undefined;
  let listener: { stop(): void } | undefined;
  const procs: Proc[] = [];
  const PORT = 8080;
  let url: string;

  beforeAll(async () => {
    lan = await createLan(3, 'dash');
    [hubHost, agentHost, attacker] = [lan.hosts[0]!, lan.hosts[1]!, lan.hosts[2]!];
    hubDir = tempDir('dash-hub');
    agentDir = tempDir('dash-agent');
    mkdirSync(join(hubDir, 'hub'), { mode: 0o700 });
    const store = new SqliteStore(join(hubDir, 'hub', 'hub.db'));
    await store.append(history(Date.now()));
    await store.close();
    const hub = rampart(hubHost, ['hub', '--data', hubDir, '--listen', hubHost.v4]);
    procs.push(hub);
    await hub.waitFor((l) => l.msg === 'hub started', 20_000, 'hub started');
    url = `http://${hubHost.v4}:7780`;
    const added = JSON.parse(await cli(hubHost, ['nodes', 'add', 'web1', '--data', hubDir, '--json'])) as {
      token: string;
    };
    await cli(agentHost, ['join', added.token, '--data', agentDir]);
    writeFileSync(join(agentDir, 'rampart.yaml'), 'agent:\n  heartbeatInterval: 1s\n');
    procs.push(await startNftAgent(agentHost, agentDir));
    listener = await tcpListener(agentHost, PORT);

    // Chromium runs inside the hub's namespace (the only place its address is reachable from);
    // the wrapper execs the same /usr/bin/chromium there, keeping playwright's pipe.
    const wrapper = join(hubDir, 'chromium-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${hubHost.ns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    browser = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-background-networking'],
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    listener?.stop();
    for (const p of procs) await p.stop();
    await lan?.destroy();
    if (hubDir) removeDir(hubDir);
    if (agentDir) removeDir(agentDir);
  });

  /** Console errors of every page: a CSP violation or a script error shows up here. */
  const consoleErrors: string[] = [];
  const login = async (token: string): Promise<Page> => {
    const page = await (await browser!.newContext({ viewport: { width: 1440, height: 1100 } })).newPage();
    page.on('console', (m) => {
      // The refused logins and the viewer's refused unban are expected 401/403 answers.
      if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(url);
    await page.fill('#token', token);
    await page.click('#login-form button[type=submit]');
    return page;
  };
  const search = async (page: Page, target: string) => {
    await page.fill('#search', target);
    await page.click('#filters button[type=submit]');
    await page.locator(`#bans tbody tr[data-target="${target}"]`).waitFor({ timeout: 30_000 });
  };

  it('refuses a wrong token in the login form', async () => {
    const page = await login('rpa1.not-the-token');
    await expect.poll(() => page.textContent('#login-error'), { timeout: 30_000 }).toContain('not this hub');
    expect(await page.isVisible('#app-view')).toBe(false);
    await page.context().close();
  });

  it('bans from the form, the viewer sees it but cannot lift it, the admin unbans it and traffic flows again', async () => {
    const adminToken = readFileSync(join(hubDir, 'hub', 'admin.token'), 'utf8').trim();
    const viewerToken = readFileSync(join(hubDir, 'hub', 'viewer.token'), 'utf8').trim();
    const target = attacker.v4;
    expect(await canConnect(attacker, agentHost.v4, PORT)).toBe(true);

    const admin = await login(adminToken);
    await admin.locator('#app-view').waitFor({ state: 'visible', timeout: 30_000 });
    await admin.fill('#ban-target', target);
    await admin.fill('#ban-duration', '1h');
    await admin.fill('#ban-reason', 'probing mail ports');
    await admin.click('#ban-form button[type=submit]');
    await until(() => inKernelSet(agentHost, target), 20_000, `${target} in the agent's kernel set`);
    expect(await canConnect(attacker, agentHost.v4, PORT, 1500)).toBe(false);

    // Live: a ban made elsewhere (the CLI) shows up without reloading the page.
    await cli(hubHost, [
      'ban',
      '198.51.100.200',
      '--for',
      '2h',
      '--reason',
      'abuse report #4411',
      '--data',
      hubDir,
    ]);
    await admin.locator('#bans tbody tr[data-target="198.51.100.200"]').waitFor({ timeout: 30_000 });
    await admin.fill('#allow-cidr', '192.0.2.0/28');
    await admin.fill('#allow-comment', 'uptime monitors');
    await admin.click('#allow-form button[type=submit]');
    await admin.locator('#allowlist tbody td', { hasText: '192.0.2.0/28' }).waitFor({ timeout: 30_000 });
    // RAMPART_DASHBOARD_SCREENSHOT=docs/dashboard.png refreshes the README's picture.
    await admin.evaluate('window.scrollTo(0, 0)');
    await admin.screenshot({
      path: process.env.RAMPART_DASHBOARD_SCREENSHOT ?? join(hubDir, 'dashboard.png'),
      fullPage: true,
    });

    const viewer = await login(viewerToken);
    await viewer.locator('#app-view').waitFor({ state: 'visible', timeout: 30_000 });
    expect(await viewer.textContent('#role')).toBe('viewer');
    await search(viewer, target);
    expect(await viewer.locator('#bans tbody button:visible').count()).toBe(0);
    expect(await viewer.isVisible('#ban-form')).toBe(false);
    // Even a hand-made call from the viewer's page, CSRF token and all, is refused.
    const status = await viewer.evaluate(async (t) => {
      const s = (await (await fetch('/v1/session')).json()) as { csrf: string };
      const r = await fetch(`/v1/decisions/${t}`, {
        method: 'DELETE',
        headers: { 'x-rampart-csrf': s.csrf },
      });
      return r.status;
    }, target);
    expect(status).toBe(403);
    expect(await inKernelSet(agentHost, target)).toBe(true);
    await viewer.context().close();

    await search(admin, target);
    const row = admin.locator(`#bans tbody tr[data-target="${target}"]`);
    await row.locator('button', { hasText: 'Unban' }).click();
    await row.waitFor({ state: 'detached', timeout: 30_000 });
    await until(
      async () => !(await inKernelSet(agentHost, target)),
      20_000,
      `${target} out of the kernel set`,
    );
    expect(await canConnect(attacker, agentHost.v4, PORT)).toBe(true);

    const allowRow = admin.locator('#allowlist tbody tr', { hasText: '192.0.2.0/28' });
    await allowRow.locator('button', { hasText: 'Remove' }).click();
    await allowRow.waitFor({ state: 'detached', timeout: 30_000 });
    const left = JSON.parse(await cli(hubHost, ['allow', 'list', '--json', '--data', hubDir]));
    expect(JSON.stringify(left)).not.toContain('192.0.2.0/28');

    // Attacker-made text (a reason from a log line) shows as text, never as markup.
    const hostile = '<img src=x onerror=alert(1)><b>bold</b>';
    await cli(hubHost, ['ban', '198.51.100.201', '--for', '1h', '--reason', hostile, '--data', hubDir]);
    await search(admin, '198.51.100.201');
    const cell = admin.locator('#bans tbody tr[data-target="198.51.100.201"] td.reason');
    expect(await cell.textContent()).toBe(hostile);
    expect(await admin.locator('#bans img, #bans b').count()).toBe(0);
    await admin.context().close();
    expect(consoleErrors).toEqual([]);
  });
});
