import { createHmac, randomUUID } from 'node:crypto';
import type { Http, HttpRequest } from './http.js';
import type { TenantModel } from './model.js';
import { sleep } from './proc.js';
import type { Rng } from './rng.js';
import { mint, type TokenMinter } from './tokens.js';

export interface BadRequestContext {
  http: Http;
  tokens: TokenMinter;
  /** [0] = the tenant under attack, [1] = the other tenant whose tokens probe it. */
  tenants: [TenantModel, TenantModel];
  webhookSecret: string;
  done: () => boolean;
}

const is4xx = (s: number) => s >= 400 && s < 500;
const HUGE_BODY_BYTES = 2 * 1024 * 1024;

type Case = (ctx: BadRequestContext, rng: Rng) => Promise<HttpRequest>;

/**
 * Requests that must all be refused with a 4xx and change nothing: malformed and mistyped bodies, huge
 * bodies, bad tokens, other tenants' and other users' ids, missing idempotency keys and forged webhooks.
 * "Change nothing" is checked at the end: every wallet must equal the model built from acknowledged
 * commands only, so a forged webhook or a cross-tenant command that slipped through shows up there.
 */
export const BAD_CASES: Record<string, Case> = {
  async malformedJson(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    return {
      ...base('malformed JSON'),
      method: 'POST',
      path: '/v1/bookings',
      token: await ctx.tokens.token(t.tenantId, sid, 'student'),
      idempotencyKey: randomUUID(),
      rawBody: `{"studentId": "${sid}", "price": {"amount": 100,`,
    };
  },
  async wrongTypes(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    const amount = rng.pick<unknown>(['1000', 10.5, -100, 0, 2 ** 60, null, { value: 1 }, true]);
    return {
      ...base('wrong types'),
      method: 'POST',
      path: `/v1/wallets/${sid}/top-ups`,
      token: await ctx.tokens.token(t.tenantId, sid, 'student'),
      idempotencyKey: randomUUID(),
      body: { amount, currency: rng.pick([t.currency, 'USD', 'dollars', 7]), paymentMethod: 'pm_card_visa' },
    };
  },
  async unknownField(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    return {
      ...base('unknown field'),
      method: 'POST',
      path: `/v1/wallets/${sid}/top-ups`,
      token: await ctx.tokens.token(t.tenantId, sid, 'student'),
      idempotencyKey: randomUUID(),
      body: { amount: 1000, currency: t.currency, paymentMethod: 'pm_card_visa', credit: 1_000_000 },
    };
  },
  async hugeBody(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    return {
      ...base('huge body'),
      method: 'POST',
      path: '/v1/bookings',
      token: await ctx.tokens.token(t.tenantId, sid, 'student'),
      idempotencyKey: randomUUID(),
      rawBody: JSON.stringify({ studentId: sid, padding: 'x'.repeat(HUGE_BODY_BYTES) }),
    };
  },
  async missingIdempotencyKey(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    return {
      ...base('missing Idempotency-Key'),
      method: 'POST',
      path: `/v1/wallets/${sid}/top-ups`,
      token: await ctx.tokens.token(t.tenantId, sid, 'student'),
      body: { amount: 1000, currency: t.currency, paymentMethod: 'pm_card_visa' },
    };
  },
  async badToken(ctx, rng) {
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    const kind = rng.int(0, 4);
    let token: string | undefined;
    if (kind === 0) token = 'not.a.jwt';
    else if (kind === 1) {
      token = await mint(
        new TextEncoder().encode('a-different-secret-of-at-least-32-bytes!!'),
        { sub: sid, tenant: t.tenantId, roles: ['student'] },
        600,
      );
    } else if (kind === 2) {
      token = await mint(
        new TextEncoder().encode(''.padEnd(32, 'x')),
        { sub: sid, tenant: t.tenantId, roles: ['finance_admin'] },
        -600,
      );
    } else if (kind === 3) {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      token = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: sid, tenant: t.tenantId, roles: ['finance_admin'], exp: Math.floor(Date.now() / 1000) + 600 })}.`;
    }
    return {
      ...base(`bad token #${kind}`),
      method: 'POST',
      path: `/v1/wallets/${sid}/top-ups`,
      ...(token ? { token } : {}),
      idempotencyKey: randomUUID(),
      body: { amount: 1000, currency: t.currency, paymentMethod: 'pm_card_visa' },
    };
  },
  async expiredRealKeyToken(ctx, rng) {
    // Signed with the right key but expired: only `exp` stops it.
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    return {
      ...base('expired token'),
      method: 'GET',
      path: `/v1/wallets/${sid}`,
      token: await ctx.tokens.token(t.tenantId, sid, 'student', -120),
    };
  },
  async otherStudentsWallet(ctx, rng) {
    const t = ctx.tenants[0];
    const [a, b] = twoOf(t.studentIds, rng);
    const write = rng.chance(0.5);
    return write
      ? {
          ...base("another student's wallet (write)"),
          method: 'POST',
          path: `/v1/wallets/${b}/top-ups`,
          token: await ctx.tokens.token(t.tenantId, a, 'student'),
          idempotencyKey: randomUUID(),
          body: { amount: 1000, currency: t.currency, paymentMethod: 'pm_card_visa' },
        }
      : {
          ...base("another student's wallet (read)"),
          method: 'GET',
          path: `/v1/wallets/${b}`,
          token: await ctx.tokens.token(t.tenantId, a, 'student'),
        };
  },
  async otherTutorsPayout(ctx, rng) {
    const t = ctx.tenants[0];
    const [a, b] = twoOf(t.tutorIds, rng);
    return {
      ...base("another tutor's payout"),
      method: 'POST',
      path: `/v1/tutors/${b}/payouts`,
      token: await ctx.tokens.token(t.tenantId, a, 'tutor'),
      idempotencyKey: randomUUID(),
      body: { amount: 100, currency: t.currency },
    };
  },
  async studentRefunds(ctx, rng) {
    const t = ctx.tenants[0];
    const b = recentBooking(t, rng);
    return {
      ...base('student refunding'),
      method: 'POST',
      path: `/v1/bookings/${b?.bookingId ?? 'nope'}/refunds`,
      token: await ctx.tokens.token(t.tenantId, b?.studentId ?? 's0', 'student'),
      idempotencyKey: randomUUID(),
      body: { amount: 1, reason: 'soak: not allowed' },
    };
  },
  async otherTenantsIds(ctx, rng) {
    // Tenant B's powerful roles aimed at tenant A's real booking ids: not found (or forbidden), never done.
    const [victim, attacker] = ctx.tenants;
    const b = recentBooking(victim, rng);
    const id = b?.bookingId ?? 'bk0x1';
    const kind = rng.int(0, 3);
    if (kind === 0) {
      return {
        ...base('other tenant: read booking'),
        method: 'GET',
        path: `/v1/bookings/${id}`,
        token: await ctx.tokens.token(attacker.tenantId, 'soak-finance', 'finance_admin'),
      };
    }
    if (kind === 1) {
      return {
        ...base('other tenant: complete booking'),
        method: 'POST',
        path: `/v1/bookings/${id}/complete`,
        token: await ctx.tokens.token(attacker.tenantId, 'soak-scheduler', 'service'),
        idempotencyKey: randomUUID(),
        body: {},
      };
    }
    if (kind === 2) {
      return {
        ...base('other tenant: refund booking'),
        method: 'POST',
        path: `/v1/bookings/${id}/refunds`,
        token: await ctx.tokens.token(attacker.tenantId, 'soak-finance', 'finance_admin'),
        idempotencyKey: randomUUID(),
        body: { amount: 1, reason: 'soak: cross-tenant' },
      };
    }
    return {
      ...base('other tenant: read stream'),
      method: 'GET',
      path: `/v1/streams/wallet-${victim.tenantId}.${rng.pick(victim.studentIds)}/events`,
      token: await ctx.tokens.token(attacker.tenantId, 'soak-finance', 'finance_admin'),
    };
  },
  async forgedWebhook(ctx, rng) {
    // A plausible payment_intent.succeeded for a wallet, with a bad, stale or missing signature.
    const t = ctx.tenants[0];
    const sid = rng.pick(t.studentIds);
    const now = Math.floor(Date.now() / 1000);
    const payload = JSON.stringify({
      id: `evt_forged_${randomUUID().replaceAll('-', '')}`,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: now,
      data: {
        object: {
          id: `pi_forged_${randomUUID().replaceAll('-', '')}`,
          object: 'payment_intent',
          amount: 500_000,
          amount_received: 500_000,
          currency: t.currency,
          status: 'succeeded',
          metadata: { tenantId: t.tenantId, topUpId: `forged${rng.int(0, 1e9)}`, studentId: sid },
        },
      },
    });
    const kind = rng.int(0, 3);
    const sign = (secret: string, ts: number) =>
      `t=${ts},v1=${createHmac('sha256', secret).update(`${ts}.${payload}`, 'utf8').digest('hex')}`;
    const header =
      kind === 0
        ? sign('whsec_not_the_real_secret', now)
        : kind === 1
          ? sign(ctx.webhookSecret, now - 3_600)
          : kind === 2
            ? `t=${now},v1=${'0'.repeat(64)}`
            : undefined;
    return {
      ...base(`forged webhook #${kind}`),
      method: 'POST',
      path: '/v1/webhooks/stripe',
      rawBody: payload,
      ...(header ? { headers: { 'stripe-signature': header } } : {}),
    };
  },
};

function base(label: string): Pick<HttpRequest, 'kind' | 'label' | 'accept'> {
  return { kind: 'bad', label: `bad: ${label}`, accept: is4xx };
}

function twoOf(ids: readonly string[], rng: Rng): [string, string] {
  const a = rng.int(0, ids.length - 1);
  const b = (a + 1 + rng.int(0, ids.length - 2)) % ids.length;
  return [ids[a]!, ids[b]!];
}

function recentBooking(t: TenantModel, rng: Rng) {
  const all = [...t.bookings.values()];
  return all.length ? all[rng.int(Math.max(0, all.length - 100), all.length - 1)] : undefined;
}

/** Sends bad requests at a steady rate until done. */
export async function badRequestLoop(
  ctx: BadRequestContext,
  rng: Rng,
  perSecond: number,
  maxRequests: number,
): Promise<number> {
  const names = Object.keys(BAD_CASES);
  const intervalMs = 1000 / perSecond;
  let sent = 0;
  let next = Date.now();
  while (!ctx.done() && sent < maxRequests) {
    const name = rng.pick(names);
    const req = await BAD_CASES[name]!(ctx, rng);
    await ctx.http.once(req, rng);
    sent++;
    next += intervalMs;
    const waitMs = next - Date.now();
    if (waitMs > 0) await sleep(waitMs);
    else next = Date.now();
  }
  return sent;
}
