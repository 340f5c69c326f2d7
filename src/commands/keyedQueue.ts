import { StreamBusyError } from './errors.js';

/**
 * Runs tasks one at a time per key (a stream name), in arrival order, with a bound on how many may wait.
 * Inside one process this turns a burst of commands on one aggregate into a queue instead of a storm of
 * optimistic-concurrency conflicts; across processes the expected revision still guards correctness.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, { tail: Promise<void>; queued: number }>();

  constructor(private readonly maxQueuedPerKey: number) {}

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let slot = this.tails.get(key);
    if (!slot) {
      slot = { tail: Promise.resolve(), queued: 0 };
      this.tails.set(key, slot);
    }
    if (slot.queued >= this.maxQueuedPerKey) return Promise.reject(new StreamBusyError(key, slot.queued));
    slot.queued++;
    const current = slot;
    const result = current.tail.then(task);
    current.tail = result.then(
      () => this.release(key, current),
      () => this.release(key, current),
    );
    return result;
  }

  private release(key: string, slot: { queued: number }): void {
    slot.queued--;
    if (slot.queued === 0 && this.tails.get(key) === slot) this.tails.delete(key);
  }
}
