import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { type IdempotencyStore, PostgresIdempotencyStore } from '../../src/api/idempotency.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { createRedisClient } from '../../src/redis/redis.js';
import { RedisIdempotencyStore } from '../../src/redis/redisIdempotencyStore.js';
import { createTestDatabase } from '../support/database.js';
import { type ShellHarness, shellHarness, token } from './support/harness.js';

const REDIS_URL = process.env.REDIS_URL;

interface StoreFixture {
  store: IdempotencyStore;
  close(): Promise<void>;
}

const fixtures: Array<{ name: string; skip: string | false; make: () => Promise<StoreFixture> }> = [
  {
    name: 'postgres',
    skip: false,
    async make() {
      // Only this store's migration: the table stands alone, and PGlite start-up stays short.
      const db = await createTestDatabase({ migrate: false });
      await migrateLatest(db.db, {
        list: migrations.filter((m) => m.name.startsWith('0030_')),
        ...(db.url ? { databaseUrl: db.url } : {}),
      });
      return { store: new PostgresIdempotencyStore(db.db.knex), close: () => db.dispose() };
    },
  },
  {
    name: 'redis',
    // Redis is optional infrastructure: without REDIS_URL there is nothing to test against.
    skip: REDIS_URL ? false : 'REDIS_URL not set',
    async make() {
      const redis: Redis = createRedisClient({
        url: REDIS_URL!,
        keyPrefix: `t${randomBytes(6).toString('hex')}:`,
      });
      return {
        store: new RedisIdempotencyStore(redis),
        async close() {
          await redis.quit();
        },
      };
    },
  },
];

const response = { statusCode: 201, body: '{"ok":true}', contentType: 'application/json; charset=utf-8' };

for (const fixture of fixtures) {
  describe.skipIf(fixture.skip)(`idempotency on ${fixture.name}`, () => {
    let f: StoreFixture;
    let h: ShellHarness;
    beforeAll(async () => {
      f = await fixture.make();
      h = await shellHarness({ idempotency: f.store });
      h.fake.credit('acme', 'stu_1', 1_000_000);
      h.fake.credit('acme', 'stu_2', 1_000_000);
    }, 180_000); // database start-up is slow on a loaded 2-core machine
    afterAll(async () => {
      await h.close();
      await f.close();
    });

    it('store: claim, in flight, complete, replay, release, takeover of an abandoned claim', async () => {
      const s = f.store;
      const a = await s.begin('acme/u/k1', 'fp1', { lockTtlMs: 60_000 });
      expect(a.kind).toBe('acquired');
      expect(await s.begin('acme/u/k1', 'fp1', { lockTtlMs: 60_000 })).toEqual({
        kind: 'in_flight',
        fingerprint: 'fp1',
      });
      if (a.kind !== 'acquired') throw new Error('unreachable');
      await s.complete('acme/u/k1', a.token, response, { retentionMs: 60_000 });
      expect(await s.begin('acme/u/k1', 'fp2', { lockTtlMs: 60_000 })).toEqual({
        kind: 'completed',
        fingerprint: 'fp1',
        response,
      });

      const b = await s.begin('acme/u/k2', 'fp', { lockTtlMs: 60_000 });
      if (b.kind !== 'acquired') throw new Error('expected a claim');
      await s.release('acme/u/k2', b.token);
      expect((await s.begin('acme/u/k2', 'fp', { lockTtlMs: 60_000 })).kind).toBe('acquired');

      // A claim whose process died expires; the lost process can then neither complete nor release it.
      const c = await s.begin('acme/u/k3', 'fp', { lockTtlMs: 1 });
      if (c.kind !== 'acquired') throw new Error('expected a claim');
      await new Promise((r) => setTimeout(r, 20));
      const d = await s.begin('acme/u/k3', 'fp', { lockTtlMs: 60_000 });
      expect(d.kind).toBe('acquired');
      await s.complete('acme/u/k3', c.token, { ...response, body: 'stale' }, { retentionMs: 60_000 });
      await s.release('acme/u/k3', c.token);
      expect((await s.begin('acme/u/k3', 'fp', { lockTtlMs: 60_000 })).kind).toBe('in_flight');
    });

    it('store: of many concurrent claims of one key exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => f.store.begin('acme/u/race', 'fp', { lockTtlMs: 60_000 })),
      );
      expect(results.filter((r) => r.kind === 'acquired')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'in_flight')).toHaveLength(19);
    });

    const booking = (bookingId: string, amount = 1000) => ({
      bookingId,
      studentId: 'stu_1',
      tutorId: 'tut_1',
      price: { amount, currency: 'usd' },
      scheduledAt: '2030-01-01T10:00:00Z',
    });
    const topUp = { amount: 1000, currency: 'usd' };
    /** A student's headers for a money request under `key`. */
    const student = async (sub: string, key: string) => ({
      authorization: `Bearer ${await token('acme', sub, 'student')}`,
      'idempotency-key': key,
    });
    const post = (url: string, headers: Record<string, string>, payload: object) =>
      h.app.inject({ method: 'POST', url, headers, payload });

    it('replays the first response for the same key and body, with Idempotent-Replayed', async () => {
      const auth = await student('stu_1', 'k-a');
      const first = await post('/v1/bookings', auth, booking('b1'));
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      // Key order in the body does not matter.
      const { scheduledAt, ...rest } = booking('b1');
      const second = await post('/v1/bookings', auth, { scheduledAt, ...rest });
      expect(second.statusCode).toBe(201);
      expect(second.body).toBe(first.body);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(h.fake.executions.get('placeBooking')).toBe(1);
    });

    it('rejects the same key with a different body: 422 idempotency_key_reused, nothing executed', async () => {
      const auth = await student('stu_1', 'k-b');
      expect((await post('/v1/bookings', auth, booking('b2'))).statusCode).toBe(201);
      const executions = h.fake.executions.get('placeBooking');
      const changes = h.fake.changes.length;
      const other = await post('/v1/bookings', auth, booking('b2', 2000));
      expect(other.statusCode).toBe(422);
      expect(other.json()).toMatchObject({ code: 'idempotency_key_reused' });
      // The same key on another route is another request too.
      const elsewhere = await post('/v1/wallets/stu_1/top-ups', auth, topUp);
      expect(elsewhere.statusCode).toBe(422);
      expect(h.fake.executions.get('placeBooking')).toBe(executions);
      expect(h.fake.changes.length).toBe(changes);
    });

    it('concurrent requests with one key: exactly one runs, the others get 409 idempotency_key_in_use', async () => {
      const auth = await student('stu_1', 'k-c');
      let open!: () => void;
      h.fake.gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      const before = h.fake.executions.get('placeBooking') ?? 0;
      const first = post('/v1/bookings', auth, booking('b3'));
      while (h.fake.waiting === 0) await new Promise((r) => setTimeout(r, 2));
      const others = await Promise.all(
        Array.from({ length: 5 }, () => post('/v1/bookings', auth, booking('b3'))),
      );
      for (const res of others) {
        expect(res.statusCode).toBe(409);
        expect(res.json()).toMatchObject({ code: 'idempotency_key_in_use' });
        expect(res.headers['retry-after']).toBe('1');
      }
      h.fake.gate = null;
      open();
      expect((await first).statusCode).toBe(201);
      const after = await post('/v1/bookings', auth, booking('b3'));
      expect(after.statusCode).toBe(201);
      expect(after.headers['idempotent-replayed']).toBe('true');
      expect(h.fake.executions.get('placeBooking')).toBe(before + 1);
    });

    it('keys are scoped to the caller, and rejections are replayed too', async () => {
      const a = await post('/v1/wallets/stu_1/top-ups', await student('stu_1', 'shared'), topUp);
      const b = await post('/v1/wallets/stu_2/top-ups', await student('stu_2', 'shared'), topUp);
      expect(a.statusCode).toBe(201);
      expect(b.statusCode).toBe(201);
      expect(a.json().topUpId).not.toBe(b.json().topUpId);
      const poor = await student('stu_poor', 'p');
      const body = { ...booking('b4'), studentId: 'stu_poor' };
      const rejected = await post('/v1/bookings', poor, body);
      expect(rejected.statusCode).toBe(422);
      const again = await post('/v1/bookings', poor, body);
      expect(again.statusCode).toBe(422);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toBe(rejected.body);
    });
  });
}

describe('a claimed response that cannot be sent', () => {
  it('answers a problem instead of hanging when what follows the onSend hook throws', async () => {
    // A money route whose reply carries a header Node refuses: the failure happens after the
    // idempotency hook has recorded the response, inside fastify's send path.
    const h = await shellHarness({
      routes: [
        async (app) => {
          app.post(
            '/test/bad-header',
            { config: { money: true, policy: [{ role: 'service' }] } },
            async (_request, reply) => {
              reply.header('x-broken', 'a\u0001b');
              return { ok: true };
            },
          );
        },
      ],
    });
    try {
      const response = await h.app.inject({
        method: 'POST',
        url: '/v1/test/bad-header',
        headers: {
          authorization: `Bearer ${await token('acme', 'svc_bad', 'service')}`,
          'idempotency-key': 'bad-header-1',
        },
        payload: {},
      });
      // fastify's own last-resort 500 (the error handler's reply carries the same refused header).
      expect(response.statusCode).toBe(500);
    } finally {
      await h.close();
    }
  });
});
