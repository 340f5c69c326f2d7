import { decodeEventOf, type LedgerEventType } from '../domain/events.js';
import type { EventStore, RecordedEvent } from '../eventstore/port.js';

/**
 * The scheduler's index of time-driven transitions, maintained from the event stream:
 *  - `expire:{bookingId}`: a held booking whose hold is not resolved by scheduledAt + holdExpiryDays;
 *  - `clear:{bookingId}`: tutor earnings recorded for a booking, clearable at clearableAt;
 *  - `resubmit:{payoutId}`: a payout whose submission waits for Stripe funds, tried again at retryAt.
 * Kept in memory, built by reading the store in bounded pages from where it left off (so a restart
 * rebuilds it from the store), one min-heap per tenant with lazy deletion.
 */
export type DueTask =
  | { kind: 'expire'; key: string; tenantId: string; bookingId: string; dueAtMs: number }
  | { kind: 'clear'; key: string; tenantId: string; bookingId: string; tutorId: string; dueAtMs: number }
  | { kind: 'resubmit'; key: string; tenantId: string; payoutId: string; dueAtMs: number }
  /** `renew:{subscriptionId}`: the renewal of `period` (attempt 0 at its start, then the dunning retries). */
  | {
      kind: 'renew';
      key: string;
      tenantId: string;
      subscriptionId: string;
      period: number;
      attempt: number;
      dueAtMs: number;
    }
  /** `recognize:{subscriptionId}`: the next day of deferred subscription revenue to recognise. */
  | { kind: 'recognize'; key: string; tenantId: string; subscriptionId: string; dueAtMs: number };

const DAY_MS = 86_400_000;

export const DUE_TASK_EVENT_TYPES = [
  'BookingPlaced',
  'BookingCompleted',
  'BookingCancelled',
  'BookingExpired',
  'TutorEarningsRecorded',
  'TutorEarningsCleared',
  'PayoutSubmissionDeferred',
  'PayoutSubmitted',
  'PayoutPaid',
  'PayoutFailed',
  'SubscriptionStarted',
  'SubscriptionRenewed',
  'SubscriptionRevenueRecognized',
  'SubscriptionPastDue',
  'SubscriptionCanceled',
] as const satisfies readonly LedgerEventType[];

export class DueTaskIndex {
  private readonly live = new Map<string, Map<string, DueTask>>();
  private readonly heaps = new Map<string, MinHeap>();
  /** Last position folded into the index (-1n: nothing yet). */
  private position = -1n;

  constructor(
    private readonly store: EventStore,
    private readonly pageSize = 1_000,
  ) {}

  private catching: Promise<void> | undefined;

  /**
   * Folds every event committed since the last call (bounded pages). Concurrent callers share one pass
   * and then make their own, so nobody folds a page twice (which could revive a task that already ran).
   */
  async catchUp(): Promise<void> {
    while (this.catching) await this.catching.catch(() => undefined);
    this.catching = this.catchUpNow();
    try {
      await this.catching;
    } finally {
      this.catching = undefined;
    }
  }

  private async catchUpNow(): Promise<void> {
    for (;;) {
      const page = await this.store.readAll({
        ...(this.position >= 0n ? { after: this.position } : {}),
        maxCount: this.pageSize,
        filter: { eventTypes: [...DUE_TASK_EVENT_TYPES] },
      });
      for (const event of page) {
        this.apply(event);
        this.position = event.position;
      }
      if (page.length < this.pageSize) return;
    }
  }

  apply(recorded: RecordedEvent): void {
    const event = decodeEventOf(recorded, DUE_TASK_EVENT_TYPES);
    const tenantId = event.tenantId;
    switch (event.type) {
      case 'BookingPlaced': {
        const { bookingId, expiresAt } = event.data;
        this.add({
          kind: 'expire',
          key: `expire:${bookingId}`,
          tenantId,
          bookingId,
          dueAtMs: Date.parse(expiresAt),
        });
        return;
      }
      case 'BookingCompleted':
      case 'BookingCancelled':
      case 'BookingExpired':
        this.remove(tenantId, `expire:${event.data.bookingId}`);
        return;
      case 'TutorEarningsRecorded': {
        const { bookingId, tutorId, clearableAt } = event.data;
        this.add({
          kind: 'clear',
          key: `clear:${bookingId}`,
          tenantId,
          bookingId,
          tutorId,
          dueAtMs: Date.parse(clearableAt),
        });
        return;
      }
      case 'TutorEarningsCleared':
        this.remove(tenantId, `clear:${event.data.bookingId}`);
        return;
      case 'PayoutSubmissionDeferred': {
        const { payoutId, retryAt } = event.data;
        this.add({
          kind: 'resubmit',
          key: `resubmit:${payoutId}`,
          tenantId,
          payoutId,
          dueAtMs: Date.parse(retryAt),
        });
        return;
      }
      case 'PayoutSubmitted':
      case 'PayoutPaid':
      case 'PayoutFailed':
        this.remove(tenantId, `resubmit:${event.data.payoutId}`);
        return;
      // Subscriptions: one renewal and one recognition task per subscription, each replaced by the next.
      case 'SubscriptionStarted':
      case 'SubscriptionRenewed': {
        const { subscriptionId, period, periodStart, periodEnd } = event.data;
        this.add({
          kind: 'renew',
          key: `renew:${subscriptionId}`,
          tenantId,
          subscriptionId,
          period: period + 1,
          attempt: 0,
          dueAtMs: Date.parse(periodEnd),
        });
        this.addRecognition(tenantId, subscriptionId, Date.parse(periodStart) + DAY_MS);
        return;
      }
      case 'SubscriptionRevenueRecognized': {
        const { subscriptionId, asOf } = event.data;
        // A day after the last one recognised; past the period end the renewal has taken over (moot).
        this.addRecognition(tenantId, subscriptionId, Date.parse(asOf) + DAY_MS);
        return;
      }
      case 'SubscriptionPastDue': {
        const { subscriptionId, period, attempt, nextAttemptAt } = event.data;
        this.add({
          kind: 'renew',
          key: `renew:${subscriptionId}`,
          tenantId,
          subscriptionId,
          period,
          attempt: attempt + 1,
          dueAtMs: Date.parse(nextAttemptAt),
        });
        this.remove(tenantId, `recognize:${subscriptionId}`);
        return;
      }
      case 'SubscriptionCanceled':
        this.remove(tenantId, `renew:${event.data.subscriptionId}`);
        this.remove(tenantId, `recognize:${event.data.subscriptionId}`);
        return;
    }
  }

  private addRecognition(tenantId: string, subscriptionId: string, dueAtMs: number): void {
    this.add({ kind: 'recognize', key: `recognize:${subscriptionId}`, tenantId, subscriptionId, dueAtMs });
  }

  /** Tasks of a tenant due at `nowMs`, earliest first, at most `limit`. */
  due(tenantId: string, nowMs: number, limit: number): DueTask[] {
    const heap = this.heaps.get(tenantId);
    const live = this.live.get(tenantId);
    if (!heap || !live) return [];
    const out: DueTask[] = [];
    const seen = new Set<string>();
    // Pop to inspect, then push back the live ones: the heap stays the source of ordering.
    const popped: DueTask[] = [];
    while (out.length < limit) {
      const top = heap.peek();
      if (!top || top.dueAtMs > nowMs) break;
      heap.pop();
      if (live.get(top.key) !== top || seen.has(top.key)) continue; // removed or superseded
      seen.add(top.key);
      popped.push(top);
      out.push(top);
    }
    for (const t of popped) heap.push(t);
    return out;
  }

  /** Drops a task after it ran (or turned out to be moot). */
  remove(tenantId: string, key: string): void {
    this.live.get(tenantId)?.delete(key);
  }

  /** Drops this task unless a newer one took its key meanwhile (a payout deferred again). */
  removeTask(task: DueTask): void {
    const live = this.live.get(task.tenantId);
    if (live?.get(task.key) === task) live.delete(task.key);
  }

  /** Tenants with at least one pending task. */
  tenants(): string[] {
    return [...this.live].filter(([, tasks]) => tasks.size > 0).map(([tenantId]) => tenantId);
  }

  size(tenantId: string): number {
    return this.live.get(tenantId)?.size ?? 0;
  }

  private add(task: DueTask): void {
    let live = this.live.get(task.tenantId);
    let heap = this.heaps.get(task.tenantId);
    if (!live || !heap) {
      live = new Map();
      heap = new MinHeap();
      this.live.set(task.tenantId, live);
      this.heaps.set(task.tenantId, heap);
    }
    live.set(task.key, task);
    heap.push(task);
    // Lazy deletion leaves dead entries behind; rebuild when they dominate so the heap stays bounded.
    if (heap.size() > 64 && heap.size() > 2 * live.size) heap.rebuild([...live.values()]);
  }
}

class MinHeap {
  private items: DueTask[] = [];

  size(): number {
    return this.items.length;
  }

  peek(): DueTask | undefined {
    return this.items[0];
  }

  rebuild(tasks: DueTask[]): void {
    this.items = [];
    for (const t of tasks) this.push(t);
  }

  push(task: DueTask): void {
    const a = this.items;
    a.push(task);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]!.dueAtMs <= a[i]!.dueAtMs) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): DueTask | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.dueAtMs < a[m]!.dueAtMs) m = l;
        if (r < a.length && a[r]!.dueAtMs < a[m]!.dueAtMs) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
