import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LISTENER_APPLICATION_NAME, type ListenState, PgListener } from '../../src/db/pgListener.js';
import { startTcpProxy, type TcpProxy } from '../eventstore/tcpProxy.js';
import { eventually } from '../eventstore/waiting.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

/** The dedicated LISTEN connection (real Postgres only: PGlite's listen is in-process). */
describe.skipIf(!usingRealPostgres)('Postgres listener connection', () => {
  let t: TestDatabase;
  let proxy: TcpProxy;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
    proxy = await startTcpProxy(t.url!);
  });
  afterAll(async () => {
    await proxy?.close();
    await t?.dispose();
  });

  const notify = (channel: string, payload: string) =>
    t.db.knex.raw('SELECT pg_notify(?, ?)', [channel, payload]);
  const listenerSessions = async () =>
    Number(
      (
        await t.db.knex.raw(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ?',
          [LISTENER_APPLICATION_NAME],
        )
      ).rows[0].n,
    );

  /** A listener on `url` with one subscriber to `channel` recording what it hears and its states. */
  async function subscribed(
    url: string,
    channel: string,
    timing: { heartbeatMs: number; queryTimeoutMs: number },
  ): Promise<{ listener: PgListener; heard: string[]; states: ListenState[] }> {
    const listener = new PgListener(url, { ...timing, reconnectDelayMs: 100, connectTimeoutMs: 2_000 });
    const heard: string[] = [];
    const states: ListenState[] = [];
    await listener.listen(
      channel,
      (p) => heard.push(p),
      (s) => states.push(s),
    );
    return { listener, heard, states };
  }

  it('shares one connection among concurrent first subscribers, each hearing its own channel', async () => {
    const listener = new PgListener(t.url!);
    const heard: string[] = [];
    const states: ListenState[] = [];
    try {
      await Promise.all(
        ['a_one', 'a_two', 'a_three'].map((channel) =>
          listener.listen(
            channel,
            (p) => heard.push(`${channel}:${p}`),
            (s) => states.push(s),
          ),
        ),
      );
      expect(await listenerSessions()).toBe(1);
      expect(states).toEqual(['listening', 'listening', 'listening']);
      await notify('a_two', 'x');
      await notify('a_three', 'y');
      await eventually(async () => heard.length === 2, 'notifications');
      expect(heard).toEqual(['a_two:x', 'a_three:y']);
    } finally {
      await listener.close();
    }
    await eventually(async () => (await listenerSessions()) === 0, 'listener session ended');
  });

  it('declares a half-open connection lost within heartbeat + timeout, and hears again after reconnecting', async () => {
    const { listener, heard, states } = await subscribed(proxy.url, 'b_chan', {
      heartbeatMs: 200,
      queryTimeoutMs: 300,
    });
    try {
      await notify('b_chan', 'before');
      await eventually(async () => heard.includes('before'), 'first notification');
      // The network stops delivering without closing anything: no error, no end, only silence.
      proxy.stall(true);
      const stalledAt = Date.now();
      await eventually(async () => states.includes('lost'), 'lost', 5_000);
      expect(Date.now() - stalledAt).toBeLessThan(2_000);
      await notify('b_chan', 'while-down');
      proxy.stall(false);
      await eventually(
        async () => states.filter((s) => s === 'listening').length === 2,
        'listening again',
        5_000,
      );
      await notify('b_chan', 'after');
      await eventually(async () => heard.includes('after'), 'notification after reconnect');
      // What was sent while it was down is lost for good: that is what 'lost' told the subscriber.
      expect(heard).not.toContain('while-down');
      expect(states).toEqual(['listening', 'lost', 'listening']);
    } finally {
      proxy.stall(false);
      await listener.close();
    }
  });

  it('reconnects after the server ends the session', async () => {
    const { listener, heard, states } = await subscribed(t.url!, 'c_chan', {
      heartbeatMs: 5_000,
      queryTimeoutMs: 1_000,
    });
    try {
      const admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      try {
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
          [LISTENER_APPLICATION_NAME],
        );
      } finally {
        await admin.end();
      }
      await eventually(async () => states.length === 3, 'lost and listening again', 5_000);
      expect(states).toEqual(['listening', 'lost', 'listening']);
      await notify('c_chan', 'back');
      await eventually(async () => heard.includes('back'), 'notification after reconnect');
    } finally {
      await listener.close();
    }
  });
});

describe('Postgres listener against a server that never answers', () => {
  it('fails every waiting subscriber with the one connect that timed out, not one timeout each in turn', async () => {
    // Accepts connections and says nothing: a partition or a hung proxy, not a refusal.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const connectTimeoutMs = 300;
    const listener = new PgListener(`postgres://postgres@127.0.0.1:${port}/none`, {
      heartbeatMs: 1_000,
      queryTimeoutMs: 300,
      reconnectDelayMs: 5_000,
      connectTimeoutMs,
    });
    try {
      const startedAt = performance.now();
      const outcomes = await Promise.allSettled(
        ['d_one', 'd_two', 'd_three', 'd_four'].map((channel) => listener.listen(channel, () => undefined)),
      );
      const elapsedMs = performance.now() - startedAt;
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
      // Serialized attempts would take 4 x 300 ms.
      expect(elapsedMs).toBeLessThan(2 * connectTimeoutMs + 250);
    } finally {
      await listener.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
