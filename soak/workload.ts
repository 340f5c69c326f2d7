import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { deterministicId } from '../src/domain/ids.js';
import type { FaultLog } from './faults.js';
import { type Http, type HttpRequest, type HttpResponse, isAmbiguous, labelOf } from './http.js';
import { type BookingModel, parsePosition, refundedTotal, type TenantModel } from './model.js';
import { sleep } from './proc.js';
import type { Recorder } from './recorder.js';
import type { Rng } from './rng.js';
import type { Role, TokenMinter } from './tokens.js';

/** A command whose outcome stayed ambiguous (network error / 5xx through every retry): resolved at the end. */
export interface PendingCommand {
  tenant: TenantModel;
  req: HttpRequest;
  onAck: (json: Record<string, unknown>) => void;
  /** Bookings it locked (busy) until resolved. */
  locks: BookingModel[];
}

export interface TenantLimits {
  topUpMin: number;
  topUpMax: number;
  payoutMin: number;
}

export interface WorkloadContext {
  http: Http;
  tokens: TokenMinter;
  recorder: Recorder;
  faults: FaultLog;
  /** The main tenant (all workload) and a second one (lighter workload, cross-tenant probes). */
  tenants: TenantModel[];
  limits: Map<string, TenantLimits>;
  pending: PendingCommand[];
  /** Definitive refusals worth a look (unexpected codes, or refused after an ambiguous attempt). */
  rejections: string[];
  stopAtMs: number;
  /** Set on SIGINT or a fatal error. */
  aborted: () => boolean;
  counters: WorkloadCounters;
}

export interface WorkloadCounters {
  acknowledged: Map<string, number>;
  rejected: Map<string, number>;
  ambiguous: Map<string, number>;
  replaysCompared: number;
  replaysSkipped: number;
  concurrentDuplicates: number;
  keyReuseProbes: number;
  hotBursts: number;
}

export function createCounters(): WorkloadCounters {
  return {
    acknowledged: new Map(),
    rejected: new Map(),
    ambiguous: new Map(),
    replaysCompared: 0,
    replaysSkipped: 0,
    concurrentDuplicates: 0,
    keyReuseProbes: 0,
    hotBursts: 0,
  };
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Statuses a well-formed command may definitively get besides 2xx. */
const commandAccept = (s: number) => (s >= 200 && s < 300) || s === 409 || s === 422;
const COMMAND_RETRY = { maxAttempts: 8, budgetMs: 30_000 };
const SCHEDULE_AHEAD_MS = 30 * 24 * 3_600_000;
export const PENDING_LIMIT = 5_000;

/** Refusals the workload provokes on purpose (racing its own clients, spending what is not there). */
const EXPECTED_REJECTIONS = new Set([
  'book insufficient_funds',
  'payout insufficient_funds',
  'complete invalid_state',
  'cancel invalid_state',
  'refund invalid_state',
  'book concurrency_conflict',
  'topUp limit_exceeded',
]);

type Action = 'topUp' | 'book' | 'complete' | 'cancel' | 'refund' | 'payout' | 'read';
const WEIGHTS: Record<Action, number> = {
  topUp: 12,
  book: 24,
  complete: 12,
  cancel: 5,
  refund: 5,
  payout: 4,
  read: 30,
};

export class Workload {
  private seq = 0;

  constructor(private readonly ctx: WorkloadContext) {}

  /** One client: a bounded loop of weighted random actions until the workload's end. */
  async client(index: number, rng: Rng, maxOps: number): Promise<void> {
    const tenant = index % 4 === 3 && this.ctx.tenants[1] ? this.ctx.tenants[1] : this.ctx.tenants[0]!;
    for (let op = 0; op < maxOps && !this.done(); op++) {
      const action = rng.weighted(WEIGHTS);
      await this[action](tenant, rng, index);
      await sleep(rng.int(0, 15));
    }
  }

  /** Bursts of concurrent bookings on one hot wallet (the wallet stream's optimistic concurrency under fire). */
  async hotWallet(rng: Rng, intervalMs: number, burstSize: number): Promise<void> {
    const tenant = this.ctx.tenants[0]!;
    const studentId = tenant.studentIds[0]!;
    while (!this.done()) {
      await this.topUp(tenant, rng, -1, studentId, 20_000);
      const burst = Array.from({ length: burstSize }, () =>
        this.book(tenant, rng, -1, studentId, rng.int(100, 900)),
      );
      await Promise.all(burst);
      this.ctx.counters.hotBursts++;
      const until = Date.now() + intervalMs;
      while (!this.done() && Date.now() < until) await sleep(Math.min(250, until - Date.now()));
    }
  }

  private done(): boolean {
    return Date.now() >= this.ctx.stopAtMs || this.ctx.aborted();
  }

  private token(tenant: TenantModel, sub: string, role: Role): Promise<string> {
    return this.ctx.tokens.token(tenant.tenantId, sub, role);
  }

  private nextId(prefix: string, client: number): string {
    return `${prefix}${client < 0 ? 'h' : client}x${++this.seq}`;
  }

  async topUp(
    tenant: TenantModel,
    rng: Rng,
    _client: number,
    studentId?: string,
    amount?: number,
  ): Promise<void> {
    const limits = this.ctx.limits.get(tenant.tenantId)!;
    const sid = studentId ?? rng.pick(tenant.studentIds);
    const declined = studentId === undefined && rng.chance(0.08);
    const value = Math.min(limits.topUpMax, Math.max(limits.topUpMin, amount ?? rng.int(2_000, 8_000)));
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: `/v1/wallets/${sid}/top-ups`,
      token: await this.token(tenant, sid, 'student'),
      idempotencyKey: randomUUID(),
      body: {
        amount: value,
        currency: tenant.currency,
        paymentMethod: declined ? 'pm_card_chargeDeclined' : 'pm_card_visa',
      },
      accept: (s) => commandAccept(s) || (declined && s === 402),
    };
    await this.execute(
      tenant,
      rng,
      'topUp',
      req,
      [],
      (json) => {
        const topUpId = json.topUpId;
        if (typeof topUpId !== 'string') throw new Error('top-up response without topUpId');
        tenant.topUps.set(topUpId, {
          topUpId,
          studentId: sid,
          amount: value,
          expect: declined ? 'fail' : 'succeed',
        });
      },
      (line) => {
        // The API derives the top-up id from tenant, caller and key: this names the request behind a
        // credit that no client was told about.
        tenant.refusedTopUps.set(
          deterministicId('api', 'topup', tenant.tenantId, sid, req.idempotencyKey!),
          line,
        );
      },
    );
  }

  async book(
    tenant: TenantModel,
    rng: Rng,
    client: number,
    studentId?: string,
    price?: number,
  ): Promise<void> {
    const sid = studentId ?? rng.pick(tenant.studentIds);
    const tutorId = rng.pick(tenant.tutorIds);
    const bookingId = this.nextId('bk', client);
    const value = price ?? rng.int(300, 2_500);
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: '/v1/bookings',
      token: await this.token(tenant, sid, 'student'),
      idempotencyKey: randomUUID(),
      body: {
        bookingId,
        studentId: sid,
        tutorId,
        price: { amount: value, currency: tenant.currency },
        scheduledAt: new Date(Date.now() + SCHEDULE_AHEAD_MS).toISOString(),
      },
      accept: commandAccept,
    };
    await this.execute(tenant, rng, 'book', req, [], () => {
      tenant.bookings.set(bookingId, {
        bookingId,
        studentId: sid,
        tutorId,
        price: value,
        status: 'held',
        captured: 0,
        cancellationFee: 0,
        refunds: new Map(),
        busy: false,
      });
    });
  }

  private claim(tenant: TenantModel, rng: Rng, wanted: (b: BookingModel) => boolean): BookingModel | null {
    // Sample rather than scan: the map grows with the run, the choice must stay O(1)-ish.
    const all = [...tenant.bookings.values()];
    for (let i = 0; i < 12 && all.length > 0; i++) {
      const b = all[rng.int(Math.max(0, all.length - 400), all.length - 1)]!;
      if (!b.busy && wanted(b)) {
        b.busy = true;
        return b;
      }
    }
    return null;
  }

  async complete(tenant: TenantModel, rng: Rng, client: number): Promise<void> {
    const b = this.claim(tenant, rng, (x) => x.status === 'held');
    if (!b) return this.read(tenant, rng);
    const asTutor = rng.chance(0.7);
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: `/v1/bookings/${b.bookingId}/complete`,
      token: await this.token(
        tenant,
        asTutor ? b.tutorId : `soak-scheduler-${client}`,
        asTutor ? 'tutor' : 'service',
      ),
      idempotencyKey: randomUUID(),
      body: {},
      accept: commandAccept,
    };
    await this.execute(tenant, rng, 'complete', req, [b], (json) => {
      b.status = 'completed';
      b.captured = numberField(json, 'captured');
    });
  }

  async cancel(tenant: TenantModel, rng: Rng): Promise<void> {
    const b = this.claim(tenant, rng, (x) => x.status === 'held');
    if (!b) return this.read(tenant, rng);
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: `/v1/bookings/${b.bookingId}/cancel`,
      token: await this.token(tenant, b.studentId, 'student'),
      idempotencyKey: randomUUID(),
      body: { reason: 'soak: student cancelled' },
      accept: commandAccept,
    };
    await this.execute(tenant, rng, 'cancel', req, [b], (json) => {
      b.status = 'cancelled';
      b.cancellationFee = numberField(json, 'cancellationFee');
    });
  }

  async refund(tenant: TenantModel, rng: Rng, client: number): Promise<void> {
    const b = this.claim(tenant, rng, (x) => x.status === 'completed' && x.captured - refundedTotal(x) > 0);
    if (!b) return this.read(tenant, rng);
    const remaining = b.captured - refundedTotal(b);
    const amount = rng.chance(0.3) ? remaining : rng.int(1, remaining);
    const key = randomUUID();
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: `/v1/bookings/${b.bookingId}/refunds`,
      token: await this.token(tenant, `soak-finance-${client}`, 'finance_admin'),
      idempotencyKey: key,
      body: { amount, reason: 'soak: partial refund' },
      accept: commandAccept,
    };
    await this.execute(tenant, rng, 'refund', req, [b], () => {
      b.refunds.set(key, amount);
    });
  }

  async payout(tenant: TenantModel, rng: Rng): Promise<void> {
    const limits = this.ctx.limits.get(tenant.tenantId)!;
    const tutorId = rng.pick(tenant.tutorIds);
    const token = await this.token(tenant, tutorId, 'tutor');
    const earnings = await this.ctx.http.once(
      {
        kind: 'read',
        method: 'GET',
        path: `/v1/tutors/${tutorId}/earnings${consistent(tenant)}`,
        token,
        accept: (s) => s === 200 || s === 404,
      },
      rng,
    );
    const available = earnings.status === 200 ? numberField(asObject(earnings.json), 'available') : 0;
    if (available < limits.payoutMin) return;
    if (!tenant.payoutAccounts.has(tutorId)) {
      // A payout needs the tutor's payout account; the soak's fake Stripe starts accounts onboarded.
      const opened = await this.ctx.http.once(
        {
          kind: 'setup',
          method: 'POST',
          path: `/v1/tutors/${tutorId}/payout-account`,
          token,
          accept: (s) => s === 200,
        },
        rng,
      );
      if (opened.status !== 200) return;
      tenant.payoutAccounts.add(tutorId);
    }
    const amount = rng.int(limits.payoutMin, Math.max(limits.payoutMin, Math.min(available, 3_000)));
    const req: HttpRequest = {
      kind: 'command',
      method: 'POST',
      path: `/v1/tutors/${tutorId}/payouts`,
      token,
      idempotencyKey: randomUUID(),
      body: { amount, currency: tenant.currency },
      accept: commandAccept,
    };
    await this.execute(tenant, rng, 'payout', req, [], (json) => {
      const payoutId = json.payoutId;
      if (typeof payoutId !== 'string') throw new Error('payout response without payoutId');
      tenant.payouts.set(payoutId, { payoutId, tutorId, amount });
    });
  }

  async read(tenant: TenantModel, rng: Rng): Promise<void> {
    const pick = rng.int(0, 5);
    const studentId = rng.pick(tenant.studentIds);
    const tutorId = rng.pick(tenant.tutorIds);
    const q = consistent(tenant);
    if (pick === 0 || pick === 1) {
      const r = await this.ctx.http.once(
        {
          kind: 'read',
          method: 'GET',
          path: `/v1/wallets/${studentId}${q}`,
          token: await this.token(tenant, studentId, 'student'),
          accept: (s) => s === 200 || s === 404,
        },
        rng,
      );
      if (r.status === 200) {
        const available = numberField(asObject(r.json), 'available');
        if (available < 0) {
          this.ctx.recorder.violation(
            'invariant_broken',
            `wallet ${tenant.tenantId}/${studentId} available ${available} < 0`,
          );
        }
      }
    } else if (pick === 2) {
      await this.ctx.http.once(
        {
          kind: 'read',
          method: 'GET',
          path: `/v1/wallets/${studentId}/transactions${q ? `${q}&` : '?'}limit=20`,
          token: await this.token(tenant, studentId, 'student'),
          accept: (s) => s === 200 || s === 404,
        },
        rng,
      );
    } else if (pick === 3) {
      const b = [...tenant.bookings.values()].at(-1 - rng.int(0, Math.min(50, tenant.bookings.size)));
      if (!b) return;
      await this.ctx.http.once(
        {
          kind: 'read',
          method: 'GET',
          path: `/v1/bookings/${b.bookingId}${q}`,
          token: await this.token(tenant, b.studentId, 'student'),
          accept: (s) => s === 200,
        },
        rng,
      );
    } else if (pick === 4) {
      await this.ctx.http.once(
        {
          kind: 'read',
          method: 'GET',
          path: `/v1/tutors/${tutorId}/earnings${q}`,
          token: await this.token(tenant, tutorId, 'tutor'),
          accept: (s) => s === 200 || s === 404,
        },
        rng,
      );
    } else {
      const r = await this.ctx.http.once(
        {
          kind: 'read',
          method: 'GET',
          path: `/v1/ledger/trial-balance${q}`,
          token: await this.token(tenant, `soak-finance-${rng.int(0, 7)}`, 'finance_admin'),
          accept: (s) => s === 200,
        },
        rng,
      );
      const tb = asObject(r.json);
      if (r.status === 200 && tb.balanced !== true) {
        this.ctx.recorder.violation(
          'invariant_broken',
          `trial balance of ${tenant.tenantId} not zero: ${r.text.slice(0, 300)}`,
        );
      }
    }
  }

  /**
   * Runs one command with retries; on acknowledgement applies it to the model, sometimes checks that
   * replaying it (same key, same body) returns the same answer, sometimes sends it twice at once.
   */
  private async execute(
    tenant: TenantModel,
    rng: Rng,
    name: string,
    req: HttpRequest,
    locks: BookingModel[],
    onAck: (json: Record<string, unknown>) => void,
    onReject?: (line: string) => void,
  ): Promise<void> {
    const startMs = Date.now();
    const history: string[] = [];
    const concurrent = rng.chance(0.04);
    let r: HttpResponse;
    if (concurrent) {
      this.ctx.counters.concurrentDuplicates++;
      const [a, b] = await Promise.all([this.ctx.http.once(req, rng), this.ctx.http.once(req, rng)]);
      if (a.status >= 200 && a.status < 300 && b.status >= 200 && b.status < 300 && !sameAnswer(a, b)) {
        this.ctx.recorder.violation(
          'idempotency_replay_differs',
          `concurrent ${req.method} ${req.path}: ${a.text.slice(0, 200)} vs ${b.text.slice(0, 200)}`,
        );
      }
      r =
        a.status >= 200 && a.status < 300
          ? a
          : b.status >= 200 && b.status < 300
            ? b
            : !isAmbiguous(a)
              ? a
              : b;
      history.push(...[a, b].map(attemptLabel));
      if (isAmbiguous(r)) {
        const again = await this.ctx.http.command(req, rng, {
          ...COMMAND_RETRY,
          stop: () => this.ctx.aborted(),
        });
        history.push(...again.history);
        r = again;
      }
    } else {
      const once = await this.ctx.http.command(req, rng, {
        ...COMMAND_RETRY,
        stop: () => this.ctx.aborted(),
      });
      history.push(...once.history);
      r = once;
    }
    if (r.status >= 200 && r.status < 300) {
      this.acknowledge(tenant, name, r, onAck);
      for (const b of locks) b.busy = false;
      if (rng.chance(0.08)) await this.replay(req, r, rng, startMs);
      return;
    }
    if (isAmbiguous(r)) {
      bump(this.ctx.counters.ambiguous, name);
      if (this.ctx.pending.length < PENDING_LIMIT) {
        this.ctx.pending.push({
          tenant,
          req,
          onAck: (json) => this.acknowledge(tenant, name, { json } as HttpResponse, onAck),
          locks,
        });
      } else {
        this.ctx.recorder.violation(
          'unresolved_command',
          `pending list full; ${req.method} ${req.path} dropped`,
        );
      }
      return;
    }
    bump(this.ctx.counters.rejected, `${name} ${r.status} ${r.code ?? ''}`.trim());
    for (const b of locks) b.busy = false;
    if (!EXPECTED_REJECTIONS.has(`${name} ${r.code}`) || history.length > 1) {
      const detail = asObject(r.json).detail;
      const line = `${name} ${req.method} ${req.path} key ${req.idempotencyKey} -> ${r.status} ${r.code ?? ''} ${typeof detail === 'string' ? JSON.stringify(detail.slice(0, 160)) : ''} (attempts: ${history.join(', ')})`;
      this.ctx.rejections.push(line);
      onReject?.(line);
    }
  }

  acknowledge(
    tenant: TenantModel,
    name: string,
    r: Pick<HttpResponse, 'json'>,
    onAck: (json: Record<string, unknown>) => void,
  ): void {
    const json = asObject(r.json);
    onAck(json);
    bump(this.ctx.counters.acknowledged, name);
    const position = parsePosition(json.position);
    if (position !== null && position > tenant.lastPosition) tenant.lastPosition = position;
  }

  private async replay(req: HttpRequest, first: HttpResponse, rng: Rng, sinceMs: number): Promise<void> {
    const again = await this.ctx.http.once(req, rng);
    // Idempotency records live in Redis when it is configured; a Redis restart in between forgets them
    // (documented in docs/guarantees.md), so such a pair proves nothing either way.
    const redisLost = this.ctx.faults.windows.some(
      (w) => w.kind === 'redis_stop' && w.startMs <= Date.now() && (w.endMs === null || w.endMs >= sinceMs),
    );
    if (isAmbiguous(again) || redisLost) {
      this.ctx.counters.replaysSkipped++;
      return;
    }
    this.ctx.counters.replaysCompared++;
    if (!sameAnswer(first, again)) {
      this.ctx.recorder.violation(
        'idempotency_replay_differs',
        `${req.method} ${req.path}: first ${first.status} ${first.text.slice(0, 160)} / replay ${again.status} ${again.text.slice(0, 160)}`,
      );
    }
    const altered = alteredBody(req.body);
    if (altered !== null) {
      // Same key, different request: must be refused (idempotency_key_reused) and change nothing.
      this.ctx.counters.keyReuseProbes++;
      await this.ctx.http.once(
        {
          ...req,
          kind: 'bad',
          label: `bad: key reused with another body (${labelOf(req.method, req.path)})`,
          body: altered,
          accept: (s) => s === 422,
        },
        rng,
      );
    }
  }
}

/** The same request with one business field changed, or null when there is nothing to change. */
export function alteredBody(body: unknown): Record<string, unknown> | null {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  if (typeof b.amount === 'number') return { ...b, amount: b.amount + 1 };
  const price = b.price as { amount?: unknown } | undefined;
  if (price && typeof price.amount === 'number')
    return { ...b, price: { ...price, amount: price.amount + 1 } };
  if (typeof b.reason === 'string') return { ...b, reason: `${b.reason} (changed)` };
  return null;
}

function attemptLabel(r: HttpResponse): string {
  return r.status === 0 ? (r.code ?? 'network') : `${r.status}${r.code ? ` ${r.code}` : ''}`;
}

function sameAnswer(a: HttpResponse, b: HttpResponse): boolean {
  return a.status === b.status && isDeepStrictEqual(a.json, b.json);
}

function consistent(tenant: TenantModel): string {
  return tenant.lastPosition >= 0n ? `?consistentWith=${tenant.lastPosition}` : '';
}

export function asObject(json: unknown): Record<string, unknown> {
  return json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
}

export function numberField(json: Record<string, unknown>, field: string): number {
  const v = json[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new Error(`response field ${field} is not a safe integer: ${JSON.stringify(v)}`);
  }
  return v;
}
