import type { EventStore, JsonObject, RecordedEvent } from '../eventstore/port.js';

/**
 * The scheduler's index of time-driven transitions, maintained from the event stream:
 *  - `expire:{bookingId}`: a held booking whose hold is not resolved by scheduledAt + holdExpiryDays;
 *  - `clear:{bookingId}`: tutor earnings recorded for a booking, clearable at clearableAt.
 * Kept in memory, built by reading the store in bounded pages from where it left off (so a restart
 * rebuilds it from the store), one min-heap per tenant with lazy deletion.
 */
export type DueTask =
  | { kind: 'expire'; key: string; tenantId: string; bookingId: string; dueAtMs: number }
  | { kind: 'clear'; key: string; tenantId: string; bookingId: string; tutorId: string; dueAtMs: number };

export const DUE_TASK_EVENT_TYPES = [
  'BookingPlaced',
  'BookingCompleted',
  'BookingCancelled',
  'BookingExpired',
  'TutorEarningsRecorded',
  'TutorEarningsCleared',
] as const;

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

  apply(event: RecordedEvent): void {
    const tenantId = event.metadata.tenantId;
    const d = event.data;
    switch (event.type) {
      case 'BookingPlaced': {
        const bookingId = str(d, 'bookingId') ?? entityOf(event.streamName);
        const expiresAtMs = Date.parse(str(d, 'expiresAt') ?? '');
        if (!bookingId || Number.isNaN(expiresAtMs)) {
          throw new Error(`BookingPlaced at ${event.position} lacks bookingId or expiresAt`);
        }
        this.add({ kind: 'expire', key: `expire:${bookingId}`, tenantId, bookingId, dueAtMs: expiresAtMs });
        return;
      }
      case 'BookingCompleted':
      case 'BookingCancelled':
      case 'BookingExpired': {
        const bookingId = str(d, 'bookingId') ?? entityOf(event.streamName);
        if (bookingId) this.remove(tenantId, `expire:${bookingId}`);
        return;
      }
      case 'TutorEarningsRecorded': {
        const bookingId = str(d, 'bookingId');
        const tutorId = str(d, 'tutorId') ?? entityOf(event.streamName);
        const clearableAtMs = Date.parse(str(d, 'clearableAt') ?? '');
        if (!bookingId || !tutorId || Number.isNaN(clearableAtMs)) {
          throw new Error(
            `TutorEarningsRecorded at ${event.position} lacks bookingId, tutorId or clearableAt`,
          );
        }
        this.add({
          kind: 'clear',
          key: `clear:${bookingId}`,
          tenantId,
          bookingId,
          tutorId,
          dueAtMs: clearableAtMs,
        });
        return;
      }
      case 'TutorEarningsCleared': {
        const bookingId = str(d, 'bookingId');
        if (bookingId) this.remove(tenantId, `clear:${bookingId}`);
        return;
      }
    }
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

function str(data: JsonObject, field: string): string | undefined {
  const v = data[field];
  return typeof v === 'string' ? v : undefined;
}

/** `{category}-{tenant}.{entityId}` -> entityId. */
function entityOf(streamName: string): string | undefined {
  const dot = streamName.indexOf('.');
  return dot < 0 ? undefined : streamName.slice(dot + 1);
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
