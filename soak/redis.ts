import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { freePort, killGroup, waitExit, waitUntil } from './proc.js';

/**
 * A private redis-server for one soak run: no persistence (`--save ""`, no AOF), 127.0.0.1 only, on a
 * free port. Stopping it loses everything in it, which is the point: idempotency records and rate-limit
 * counters vanish, and correctness must not depend on them.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;

  private constructor(
    readonly root: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async create(parentDir: string): Promise<PrivateRedis> {
    const instance = new PrivateRedis(parentDir, await freePort());
    await instance.start();
    return instance;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('redis already running');
    const log = openSync(path.join(this.root, 'redis.log'), 'a');
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.root,
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
    this.child.once('exit', () => {
      this.child = null;
    });
    const ready = await waitUntil(() => this.ping(), { timeoutMs: 15_000, intervalMs: 100 });
    if (!ready) throw new Error(`private redis on port ${this.port} did not answer PING within 15 s`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    killGroup(child, 'SIGTERM');
    if ((await waitExit(child, 10_000)) === false) {
      killGroup(child, 'SIGKILL');
      await waitExit(child, 5_000);
    }
    this.child = null;
  }

  ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    });
  }
}
