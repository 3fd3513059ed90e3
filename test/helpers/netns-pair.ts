import { afterAll, beforeAll } from 'vitest';
import { createLan, type Host, type Lan, tcpListener } from './netns.js';

/**
 * For a suite: a server namespace listening on `port` (IPv4 and IPv6) and a client namespace on
 * one LAN, built before the first test and torn down after the last, even when one fails.
 */
export function serverAndClient(tag: string, port: number): { readonly server: Host; readonly client: Host } {
  let lan: Lan | undefined;
  let listener: { stop(): void } | undefined;
  const pair = {} as { server: Host; client: Host };
  beforeAll(async () => {
    lan = await createLan(2, tag);
    [pair.server, pair.client] = lan.hosts as [Host, Host];
    listener = await tcpListener(pair.server, port);
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
  });
  return pair;
}

/** Runs `node MAIN ...args` inside a host's namespace; never throws, returns the exit code. */
export async function cliIn(
  host: Host,
  main: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, stdout: await host.exec(process.execPath, [main, ...args]), stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
