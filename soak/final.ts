import { isDeepStrictEqual } from 'node:util';
import { type Http, type HttpRequest, isAmbiguous } from './http.js';
import { expectedWallet, parsePosition, refundedTotal, type TenantModel } from './model.js';
import { sleep } from './proc.js';
import type { Recorder } from './recorder.js';
import type { Rng } from './rng.js';
import type { TokenMinter } from './tokens.js';
import { asObject, type PendingCommand } from './workload.js';

const FINANCE = 'soak-audit';
const AUDITORS = 64;
const STREAM_PAGE = 200;
const STREAM_MAX_PAGES = 2_000;

export interface StreamEvent {
  type: string;
  data: Record<string, unknown>;
}

/** Thrown when a route the final checks need does not exist (404 without a problem code / 405). */
export class RouteMissing extends Error {}

export class FinalChecks {
  constructor(
    private readonly http: Http,
    private readonly tokens: TokenMinter,
    private readonly recorder: Recorder,
    private readonly rng: Rng,
  ) {}

  private auditor = 0;

  /**
   * A finance-admin token, a different auditor for every read: rate limits are per caller and the
   * verification pass reads every entity (more than one caller's limit per minute once reads are fast),
   * which is not the workload being measured.
   */
  private finance(tenant: TenantModel): Promise<string> {
    this.auditor = (this.auditor + 1) % AUDITORS;
    return this.tokens.token(tenant.tenantId, `${FINANCE}-${this.auditor}`, 'finance_admin');
  }

  private get(path: string, token: string, accept: (s: number) => boolean = (s) => s === 200) {
    const req: HttpRequest = { kind: 'final', method: 'GET', path, token, accept };
    return this.http.command(req, this.rng, { maxAttempts: 6, budgetMs: 20_000 });
  }

  /**
   * Re-sends every ambiguous command with its own key and body until the answer is definitive. The
   * budget outlives the API's in-flight claim left by a killed process (60 s lock TTL).
   */
  async resolvePending(
    pending: PendingCommand[],
    budgetMs: number,
  ): Promise<{ resolved: number; rejected: number; unresolved: number }> {
    const deadline = Date.now() + budgetMs;
    let resolved = 0;
    let rejected = 0;
    let unresolved = 0;
    const queue = pending.splice(0);
    const worker = async () => {
      for (let p = queue.shift(); p; p = queue.shift()) {
        const left = deadline - Date.now();
        const r =
          left > 0
            ? await this.http.command({ ...p.req, kind: 'final' }, this.rng, {
                maxAttempts: 40,
                budgetMs: left,
              })
            : null;
        if (r && r.status >= 200 && r.status < 300) {
          p.onAck(asObject(r.json));
          resolved++;
        } else if (r && !isAmbiguous(r)) {
          rejected++;
          this.recorder.note(
            `ambiguous ${p.req.method} ${p.req.path} resolved as refused: ${r.status} ${r.code ?? ''} (attempts: ${r.history.join(', ')})`,
          );
        } else {
          unresolved++;
          this.recorder.violation(
            'unresolved_command',
            `${p.req.method} ${p.req.path} still ambiguous after the run (${r ? `attempts: ${r.history.join(', ')}` : 'no time left'})`,
          );
        }
        for (const b of p.locks) b.busy = false;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return { resolved, rejected, unresolved };
  }

  /** All events of one stream, paged (finance admin); [] when the stream does not exist. */
  async streamEvents(tenant: TenantModel, stream: string): Promise<StreamEvent[]> {
    const token = await this.finance(tenant);
    const out: StreamEvent[] = [];
    let from: string | null = '0';
    for (let page = 0; page < STREAM_MAX_PAGES && from !== null; page++) {
      const r = await this.get(
        `/v1/streams/${stream}/events?fromRevision=${from}&limit=${STREAM_PAGE}`,
        token,
        (s) => s === 200 || s === 404,
      );
      if (r.status === 404) {
        if (r.code === null) throw new RouteMissing('GET /v1/streams/{stream}/events is not served');
        return out;
      }
      if (r.status !== 200) throw new Error(`reading ${stream}: ${r.status} ${r.code ?? ''}`);
      const body = asObject(r.json);
      const events = Array.isArray(body.events) ? body.events : [];
      for (const e of events) {
        const o = asObject(e);
        out.push({ type: String(o.type), data: asObject(o.data) });
      }
      from = typeof body.nextRevision === 'string' ? body.nextRevision : null;
    }
    return out;
  }

  /** Every acknowledged top-up with a good card credited exactly once; polls until then, bounded. */
  async waitForTopUps(tenants: TenantModel[], timeoutMs: number): Promise<Map<string, Set<string>>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const credited = new Map<string, Set<string>>();
      let missing = 0;
      for (const tenant of tenants) {
        const set = new Set<string>();
        for (const sid of tenant.studentIds) {
          for (const e of await this.streamEvents(tenant, `wallet-${tenant.tenantId}.${sid}`)) {
            if (e.type === 'WalletToppedUp' && typeof e.data.topUpId === 'string') set.add(e.data.topUpId);
          }
        }
        credited.set(tenant.tenantId, set);
        for (const t of tenant.topUps.values()) if (t.expect === 'succeed' && !set.has(t.topUpId)) missing++;
      }
      if (missing === 0 || Date.now() >= deadline) return credited;
      await sleep(2_000);
    }
  }

  /** Appends one event per tenant (a settings write with the same values) to get a fence position. */
  async fence(tenant: TenantModel, patch: Record<string, unknown>): Promise<bigint | null> {
    const req: HttpRequest = {
      kind: 'final',
      method: 'PUT',
      path: '/v1/tenant/settings',
      token: await this.tokens.token(tenant.tenantId, 'soak-admin', 'tenant_admin'),
      idempotencyKey: `soak-fence-${Date.now()}`,
      body: patch,
      accept: (s) => s === 200,
    };
    const r = await this.http.command(req, this.rng, { maxAttempts: 6, budgetMs: 20_000 });
    return r.status === 200 ? parsePosition(asObject(r.json).position) : null;
  }

  /**
   * Waits (bounded) until a read consistent with `position` answers, then checks it really is: the last
   * acknowledged booking (or the first student's wallet) must be found. A 404 there means the API
   * honoured consistentWith from a read model that had not applied the position.
   */
  async waitConsistent(
    tenant: TenantModel,
    position: bigint,
    timeoutMs: number,
  ): Promise<'caught_up' | 'timed_out' | 'stale'> {
    const deadline = Date.now() + timeoutMs;
    const lastBooking = [...tenant.bookings.keys()].at(-1);
    const sid = tenant.studentIds[0]!;
    const path = lastBooking ? `/v1/bookings/${lastBooking}` : `/v1/wallets/${sid}`;
    const token = lastBooking
      ? await this.finance(tenant)
      : await this.tokens.token(tenant.tenantId, sid, 'student');
    while (Date.now() < deadline) {
      const r = await this.http.once(
        {
          kind: 'final',
          method: 'GET',
          path: `${path}?consistentWith=${position}`,
          token,
          accept: (s) => s === 200 || s === 503,
        },
        this.rng,
      );
      if (r.status === 200) return 'caught_up';
      if (r.status === 404) {
        this.recorder.violation(
          'invariant_broken',
          `${tenant.tenantId}: GET ${path}?consistentWith=${position} answered 404 for an acknowledged entity (read-your-writes broken)`,
        );
        return 'stale';
      }
      await sleep(500);
    }
    return 'timed_out';
  }

  /**
   * Compares the server with the model: each acknowledged effect present exactly once in the owning
   * stream, nothing present that was never acknowledged, wallets equal to the model, read models
   * consistent with the events, trial balance zero. Returns a snapshot of the read side for the
   * rebuild comparison.
   */
  async check(tenant: TenantModel, credited: Set<string>): Promise<Record<string, unknown>> {
    const t = tenant.tenantId;
    const snapshot: Record<string, unknown> = {};
    const v = (category: Parameters<Recorder['violation']>[0], detail: string) =>
      this.recorder.violation(category, `${t}: ${detail}`);

    for (const sid of tenant.studentIds) {
      const events = await this.streamEvents(tenant, `wallet-${t}.${sid}`);
      const count = (type: string, field: string, value: string) =>
        events.filter((e) => e.type === type && e.data[field] === value).length;
      const toppedUp = new Map<string, number>();
      const holds = new Map<string, number>();
      for (const e of events) {
        if (e.type === 'WalletToppedUp')
          toppedUp.set(String(e.data.topUpId), (toppedUp.get(String(e.data.topUpId)) ?? 0) + 1);
        if (e.type === 'WalletHoldPlaced')
          holds.set(String(e.data.bookingId), (holds.get(String(e.data.bookingId)) ?? 0) + 1);
      }
      for (const [topUpId, n] of toppedUp) {
        const model = tenant.topUps.get(topUpId);
        if (n > 1) v('double_effect', `top-up ${topUpId} credited ${n} times to ${sid}`);
        if (!model) {
          const refused = tenant.refusedTopUps.get(topUpId);
          v(
            'double_effect',
            refused
              ? `wallet ${sid} credited by top-up ${topUpId} although its request was refused: ${refused}`
              : `wallet ${sid} credited by top-up ${topUpId} that no client was told about`,
          );
        } else if (model.expect === 'fail')
          v('invariant_broken', `top-up ${topUpId} with a declined card credited ${sid}`);
      }
      for (const [bookingId, n] of holds) {
        if (n > 1) v('double_effect', `booking ${bookingId} held ${n} times on ${sid}`);
        if (!tenant.bookings.has(bookingId))
          v('double_effect', `hold for booking ${bookingId} on ${sid} that no client was told about`);
      }
      for (const b of tenant.bookings.values()) {
        if (b.studentId !== sid) continue;
        if (!holds.has(b.bookingId))
          v('missing_event', `acknowledged booking ${b.bookingId}: no WalletHoldPlaced`);
        const captured = count('WalletHoldCaptured', 'bookingId', b.bookingId);
        const released = count('WalletHoldReleased', 'bookingId', b.bookingId);
        const refunds = count('WalletRefunded', 'bookingId', b.bookingId);
        const wantCaptured = b.status === 'completed' ? 1 : 0;
        const wantReleased = b.status === 'cancelled' ? 1 : 0;
        if (captured !== wantCaptured)
          v(
            captured > wantCaptured ? 'double_effect' : 'missing_event',
            `booking ${b.bookingId} (${b.status}): ${captured} captures`,
          );
        if (released !== wantReleased)
          v(
            released > wantReleased ? 'double_effect' : 'missing_event',
            `booking ${b.bookingId} (${b.status}): ${released} releases`,
          );
        if (refunds !== b.refunds.size)
          v(
            refunds > b.refunds.size ? 'double_effect' : 'missing_event',
            `booking ${b.bookingId}: ${refunds} WalletRefunded for ${b.refunds.size} acknowledged refunds`,
          );
      }
      const r = await this.get(
        `/v1/wallets/${sid}`,
        await this.tokens.token(t, sid, 'student'),
        (s) => s === 200 || s === 404,
      );
      const wallet = r.status === 200 ? asObject(r.json) : null;
      snapshot[`wallet ${sid}`] = wallet;
      const want = expectedWallet(tenant, sid, credited);
      const got = wallet
        ? { available: wallet.available, pending: wallet.pending, posted: wallet.posted }
        : { available: 0, pending: 0, posted: 0 };
      if (!isDeepStrictEqual(got, want))
        v('balance_mismatch', `wallet ${sid}: server ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
      if (typeof got.available === 'number' && got.available < 0)
        v('invariant_broken', `wallet ${sid} available ${got.available} < 0`);
    }

    for (const tp of tenant.topUps.values()) {
      if (tp.expect === 'succeed' && !credited.has(tp.topUpId))
        v('missing_event', `acknowledged top-up ${tp.topUpId} (good card) never credited`);
    }

    for (const b of tenant.bookings.values()) {
      const r = await this.get(
        `/v1/bookings/${b.bookingId}`,
        await this.finance(tenant),
        (s) => s === 200 || s === 404,
      );
      const view = r.status === 200 ? asObject(r.json) : null;
      snapshot[`booking ${b.bookingId}`] = view;
      if (!view) {
        v('missing_event', `acknowledged booking ${b.bookingId} not found (last answer ${r.status})`);
        continue;
      }
      const price = asObject(view.price).amount;
      const mismatch =
        view.status !== b.status ||
        price !== b.price ||
        view.refunded !== refundedTotal(b) ||
        (b.status === 'completed' && view.captured !== b.captured) ||
        (b.status === 'cancelled' && view.cancellationFee !== b.cancellationFee);
      if (mismatch) {
        v(
          'balance_mismatch',
          `booking ${b.bookingId}: server ${JSON.stringify({ status: view.status, price, captured: view.captured, refunded: view.refunded })}, model ${JSON.stringify({ status: b.status, price: b.price, captured: b.captured, refunded: refundedTotal(b) })}`,
        );
      }
    }

    const tutorHolds = new Map<string, number>();
    for (const tid of tenant.tutorIds) {
      for (const e of await this.streamEvents(tenant, `tutor-${t}.${tid}`)) {
        if (e.type === 'TutorPayoutHoldPlaced')
          tutorHolds.set(String(e.data.payoutId), (tutorHolds.get(String(e.data.payoutId)) ?? 0) + 1);
      }
      const r = await this.get(
        `/v1/tutors/${tid}/earnings`,
        await this.tokens.token(t, tid, 'tutor'),
        (s) => s === 200 || s === 404,
      );
      const earnings = r.status === 200 ? asObject(r.json) : null;
      snapshot[`earnings ${tid}`] = earnings;
      if (earnings && typeof earnings.available === 'number' && earnings.available < 0)
        v('invariant_broken', `tutor ${tid} available ${earnings.available} < 0`);
    }
    for (const [payoutId, n] of tutorHolds) {
      if (n > 1) v('double_effect', `payout ${payoutId} held ${n} times`);
      if (!tenant.payouts.has(payoutId))
        v('double_effect', `payout hold ${payoutId} that no client was told about`);
    }
    for (const p of tenant.payouts.values()) {
      if (!tutorHolds.has(p.payoutId))
        v('missing_event', `acknowledged payout ${p.payoutId}: no TutorPayoutHoldPlaced`);
      const r = await this.get(
        `/v1/payouts/${p.payoutId}`,
        await this.finance(tenant),
        (s) => s === 200 || s === 404,
      );
      const view = r.status === 200 ? asObject(r.json) : null;
      snapshot[`payout ${p.payoutId}`] = view;
      if (!view) v('missing_event', `acknowledged payout ${p.payoutId} not found (last answer ${r.status})`);
      else if (asObject(view.amount).amount !== p.amount)
        v('balance_mismatch', `payout ${p.payoutId}: amount ${JSON.stringify(view.amount)} vs ${p.amount}`);
    }

    const tb = await this.get('/v1/ledger/trial-balance', await this.finance(tenant));
    const trial = asObject(tb.json);
    snapshot['trial balance'] = trial;
    if (tb.status !== 200 || trial.balanced !== true)
      v('invariant_broken', `trial balance not zero: ${tb.status} ${tb.text.slice(0, 300)}`);
    return snapshot;
  }

  /** The same reads as `check`'s snapshot, for comparison after a rebuild. */
  async snapshot(tenant: TenantModel): Promise<Record<string, unknown>> {
    const t = tenant.tenantId;
    const out: Record<string, unknown> = {};
    const read = async (path: string, token: string) => {
      const r = await this.get(path, token, (s) => s === 200 || s === 404);
      return r.status === 200 ? asObject(r.json) : null;
    };
    for (const sid of tenant.studentIds)
      out[`wallet ${sid}`] = await read(`/v1/wallets/${sid}`, await this.tokens.token(t, sid, 'student'));
    for (const b of tenant.bookings.values())
      out[`booking ${b.bookingId}`] = await read(`/v1/bookings/${b.bookingId}`, await this.finance(tenant));
    for (const tid of tenant.tutorIds)
      out[`earnings ${tid}`] = await read(
        `/v1/tutors/${tid}/earnings`,
        await this.tokens.token(t, tid, 'tutor'),
      );
    for (const p of tenant.payouts.values())
      out[`payout ${p.payoutId}`] = await read(`/v1/payouts/${p.payoutId}`, await this.finance(tenant));
    out['trial balance'] = await read('/v1/ledger/trial-balance', await this.finance(tenant));
    return out;
  }
}

/** Keys whose values differ between two snapshots (bounded list). */
export function diffSnapshots(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  limit = 20,
): string[] {
  const diffs: string[] = [];
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const k of keys) {
    if (!isDeepStrictEqual(before[k], after[k])) {
      diffs.push(
        `${k}: before ${JSON.stringify(before[k])?.slice(0, 200)} after ${JSON.stringify(after[k])?.slice(0, 200)}`,
      );
      if (diffs.length >= limit) break;
    }
  }
  return diffs;
}
