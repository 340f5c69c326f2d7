import { describe, expect, it } from 'vitest';
import { CoalescedStreamReads } from '../../src/commands/coalescedReads.js';
import { StreamBusyError } from '../../src/commands/errors.js';
import type { RecordedEvent } from '../../src/eventstore/port.js';

/** A read function whose reads the test finishes by hand; each read answers with its own number. */
function manualReads() {
  const pending: Array<{ stream: string; finish: (error?: Error) => void }> = [];
  let started = 0;
  const readNow = (stream: string) =>
    new Promise<readonly RecordedEvent[]>((resolve, reject) => {
      const n = ++started;
      pending.push({
        stream,
        finish: (error) => (error ? reject(error) : resolve([{ position: BigInt(n) } as RecordedEvent])),
      });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { readNow, pending, started: () => started, tick };
}

const readNumber = (events: readonly RecordedEvent[]) => Number(events[0]!.position);

describe('CoalescedStreamReads', () => {
  it('never answers a caller with a read that began before it asked; later arrivals share the next read', async () => {
    const m = manualReads();
    const reads = new CoalescedStreamReads(m.readNow);
    const a = reads.read('s');
    expect(m.started()).toBe(1);
    // b and c arrive while read 1 runs: they must not get read 1.
    const b = reads.read('s');
    const c = reads.read('s');
    expect(m.started()).toBe(1);
    m.pending.shift()!.finish();
    expect(readNumber(await a)).toBe(1);
    await m.tick();
    expect(m.started()).toBe(2);
    const d = reads.read('s'); // arrives during read 2: waits for read 3
    m.pending.shift()!.finish();
    expect([readNumber(await b), readNumber(await c)]).toEqual([2, 2]);
    await m.tick();
    m.pending.shift()!.finish();
    expect(readNumber(await d)).toBe(3);
    expect(reads.stats()).toEqual({ reads: 3, served: 4 });
  });

  it('streams are independent, and a failed read fails only the callers it was for', async () => {
    const m = manualReads();
    const reads = new CoalescedStreamReads(m.readNow);
    const x = reads.read('x');
    const y = reads.read('y');
    expect(m.pending.map((p) => p.stream)).toEqual(['x', 'y']);
    const x2 = reads.read('x');
    m.pending.shift()!.finish(new Error('boom'));
    await expect(x).rejects.toThrow('boom');
    await m.tick();
    m.pending.shift()!.finish();
    m.pending.shift()!.finish();
    expect(readNumber(await y)).toBe(2);
    expect(readNumber(await x2)).toBe(3);
  });

  it('bounds the callers waiting per stream', async () => {
    const m = manualReads();
    const reads = new CoalescedStreamReads(m.readNow, 2);
    const first = reads.read('s');
    const waiting = [reads.read('s'), reads.read('s')];
    await expect(reads.read('s')).rejects.toBeInstanceOf(StreamBusyError);
    m.pending.shift()!.finish();
    await first;
    await m.tick();
    m.pending.shift()!.finish();
    expect((await Promise.all(waiting)).map(readNumber)).toEqual([2, 2]);
  });
});
