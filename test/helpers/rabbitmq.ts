import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 60_000 });

export interface TestVhost {
  host: string;
  port: number;
  vhost: string;
  user: string;
  password: string;
  /** amqp://user:password@127.0.0.1:PORT/vhost */
  url(port?: number): string;
  /** Closes every connection to the shared broker made by this vhost's user. */
  closeConnections(): Promise<void>;
  /** The broker's own count of a queue's messages waiting (`ready`) and delivered, not yet acknowledged. */
  queueCounts(queue: string): Promise<{ ready: number; unacked: number } | undefined>;
  remove(): Promise<void>;
}

/**
 * A vhost and a user of its own on the shared RabbitMQ, so suites never see each other's
 * exchanges and queues; `remove()` deletes both (and with them every queue).
 */
export async function createTestVhost(): Promise<TestVhost> {
  const id = randomBytes(5).toString('hex');
  const vhost = `rampart-test-${id}`;
  const user = `rampart-test-${id}`;
  const password = randomBytes(12).toString('hex');
  await ctl('add_vhost', vhost);
  await ctl('add_user', user, password);
  await ctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
  return {
    host: '127.0.0.1',
    port: 5672,
    vhost,
    user,
    password,
    url: (port = 5672) => `amqp://${user}:${password}@127.0.0.1:${port}/${encodeURIComponent(vhost)}`,
    closeConnections: async () => {
      // Only this user's connections (other engineers share the broker), all in one command: one
      // rabbitmqctl per connection took seconds each, and closed them seconds apart.
      await ctl('close_all_user_connections', user, 'rampart test');
    },
    queueCounts: async (queue) => {
      const { stdout } = await ctl(
        'list_queues',
        '-p',
        vhost,
        '--quiet',
        '--no-table-headers',
        'name',
        'messages_ready',
        'messages_unacknowledged',
      );
      const row = stdout
        .split('\n')
        .map((l) => l.split('\t'))
        .find((f) => f[0] === queue);
      return row ? { ready: Number(row[1]), unacked: Number(row[2]) } : undefined;
    },
    remove: async () => {
      await ctl('delete_vhost', vhost).catch(() => undefined);
      await ctl('delete_user', user).catch(() => undefined);
    },
  };
}

export type RabbitVhost = TestVhost;
/** The same, under the name the compat suites use (the tag only helped reading the broker's list). */
export const createVhost = (_tag?: string): Promise<TestVhost> => createTestVhost();
