import type { RecordedEvent } from '../eventstore/port.js';
import { StreamBusyError } from './errors.js';

interface Waiter {
  resolve: (events: readonly RecordedEvent[]) => void;
  reject: (error: unknown) => void;
}

interface Slot {
  running: boolean;
  /** Callers that arrived after the running read began: they wait for the next one. */
  next: Waiter[];
}

/**
 * Shares reads of one stream between concurrent callers without ever answering a caller with a read
 * that began before it asked. A caller that arrives while a read of the stream is running waits for
 * the next read, which starts when the running one ends and answers everyone who arrived meanwhile.
 *
 * Why that is as good as the caller's own read: the shared read starts after the caller asked, so it
 * sees everything committed before the caller asked, which is all an own read started at that moment
 * could guarantee; in particular, an event the caller itself appended before asking (a hold whose
 * position is then used for "settings as of") is committed, and so is every event before it (the
 * store's positions follow commit order). Under load this turns one read per request of a hot stream
 * (the tenant's settings) into about one read per round trip.
 *
 * Callers share the returned array and must not change it. Bounded: at most maxWaitersPerStream callers
 * wait per stream (beyond that StreamBusyError), and a stream's slot is dropped when idle.
 */
export class CoalescedStreamReads {
  private readonly slots = new Map<string, Slot>();
  private readonly counters = { reads: 0, served: 0 };

  constructor(
    private readonly readNow: (streamName: string) => Promise<readonly RecordedEvent[]>,
    private readonly maxWaitersPerStream = 10_000,
  ) {
    if (!Number.isSafeInteger(maxWaitersPerStream) || maxWaitersPerStream < 1) {
      throw new RangeError('maxWaitersPerStream must be >= 1');
    }
  }

  stats(): Readonly<typeof this.counters> {
    return { ...this.counters };
  }

  read(streamName: string): Promise<readonly RecordedEvent[]> {
    let slot = this.slots.get(streamName);
    if (!slot) {
      slot = { running: false, next: [] };
      this.slots.set(streamName, slot);
    }
    if (slot.next.length >= this.maxWaitersPerStream) {
      return Promise.reject(new StreamBusyError(streamName, slot.next.length));
    }
    const current = slot;
    return new Promise((resolve, reject) => {
      current.next.push({ resolve, reject });
      if (!current.running) this.startRead(streamName, current);
    });
  }

  private startRead(streamName: string, slot: Slot): void {
    const waiters = slot.next;
    slot.next = [];
    slot.running = true;
    this.counters.reads++;
    this.counters.served += waiters.length;
    this.readNow(streamName)
      .then(
        (events) => {
          for (const w of waiters) w.resolve(events);
        },
        (error: unknown) => {
          for (const w of waiters) w.reject(error);
        },
      )
      .finally(() => {
        slot.running = false;
        if (slot.next.length > 0) this.startRead(streamName, slot);
        else if (this.slots.get(streamName) === slot) this.slots.delete(streamName);
      });
  }
}
