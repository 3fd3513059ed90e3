import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RabbitVhost {
  host: string;
  port: number;
  vhost: string;
  user: string;
  password: string;
  remove(): Promise<void>;
}

/**
 * A vhost and a user of its own on the local RabbitMQ (127.0.0.1:5672), so tests running side by
 * side never share a queue; `remove()` deletes both (call it in afterAll, even on failure).
 */
export async function createVhost(tag: string): Promise<RabbitVhost> {
  const id = `${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const vhost = `rampart-${id}`;
  const user = `rampart-${id}`;
  const password = randomBytes(12).toString('hex');
  const ctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 60_000 });
  await ctl('add_vhost', vhost);
  await ctl('add_user', user, password);
  await ctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
  return {
    host: '127.0.0.1',
    port: 5672,
    vhost,
    user,
    password,
    async remove() {
      await ctl('delete_vhost', vhost).catch(() => {});
      await ctl('delete_user', user).catch(() => {});
    },
  };
}
