import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import type { CommandContext } from '../../src/commands/context.js';
import { DomainError } from '../../src/domain/errors.js';
import { fold } from '../../src/domain/index.js';
import { type WalletCommand, type WalletEvent, walletDecider } from '../../src/domain/wallet.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { MemorySnapshotStore } from '../../src/eventstore/snapshots.js';
import { uuid } from '../domain/fixtures.js';

/**
 * Snapshots and the id window against a simple model (docs/architecture.md, "Flat cost for long-lived
 * streams"): random wallet commands, each sent once or retried later (same key, same payload), with
 * "crashes" (a new handler: empty cache, the same store and snapshots), a window of a few ids and a
 * snapshot every few events, so most retries cross a snapshot and fall out of the window.
 *  - a retried command appends nothing and answers as a replay with the same events;
 *  - a hold resolves once (at most one capture or release per hold in the stream);
 *  - the state a handler loads (snapshot + tail) equals the fold of the whole stream, and the state
 *    each command returns equals the fold of the stream up to it;
 *  - the wallet never goes below zero (the model's balance equals the state's).
 */
const STREAM = 'wallet-t1.stu_1';
const STUDENT = 'stu_1';

type Step =
  | { kind: 'topUp'; n: number; amount: number }
  | { kind: 'hold'; n: number; amount: number }
  | { kind: 'capture'; hold: number; n: number }
  | { kind: 'release'; hold: number; n: number }
  | { kind: 'retry'; back: number }
  | { kind: 'crash' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('topUp' as const),
      n: fc.nat(),
      amount: fc.integer({ min: 1, max: 500 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      n: fc.nat(),
      amount: fc.integer({ min: 1, max: 300 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('capture' as const), hold: fc.nat(), n: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), hold: fc.nat(), n: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('retry' as const), back: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) },
);

const ctx = (key: string): CommandContext => ({
  tenantId: 't1',
  actor: { id: 'svc', role: 'service' },
  idempotencyKey: key,
  correlationId: `corr-${key}`,
  causationId: `cause-${key}`,
});

interface Sent {
  key: string;
  commandType: string;
  command: WalletCommand;
}

/** State as plain data (PersistentMap serialises sorted), for equality. */
const plain = (state: unknown): unknown => JSON.parse(JSON.stringify(state));

describe('snapshots and the id window (wallet, property)', () => {
  it('retries across snapshots and crashes append nothing; snapshot + tail equals the full fold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
        async (steps, idWindow, snapshotEveryEvents) => {
          const store = new MemoryEventStore({ now: () => new Date('2026-01-01T00:00:00.000Z') });
          const snapshots = new MemorySnapshotStore();
          const newHandler = () =>
            new CommandHandler({
              store,
              clock: () => new Date('2026-01-01T00:00:00.000Z'),
              snapshots,
              idWindow,
              snapshotEveryEvents,
              readPageSize: 3,
            });
          let handler = newHandler();
          // Commands that appended: retrying one must append nothing. (A refused command appended nothing,
          // so sending it again is a new attempt that may now succeed: not a retry in this sense.)
          const sent: Sent[] = [];
          const holds: string[] = [];
          let model = 0; // available balance
          const read = async () => {
            try {
              return await store.readStream(STREAM, { maxCount: 10_000 });
            } catch {
              return [];
            }
          };
          const send = async (s: Sent) =>
            handler.handle(walletDecider, STREAM, s.command, ctx(s.key), { commandType: s.commandType });

          for (const [i, step] of steps.entries()) {
            if (step.kind === 'crash') {
              handler = newHandler();
              continue;
            }
            if (step.kind === 'retry') {
              if (sent.length === 0) continue;
              const original = sent[step.back % sent.length]!;
              const before = (await read()).length;
              const result = await send(original);
              expect(result.replayed).toBe(true);
              const stored = (await read()).filter((e) => e.metadata.idempotencyKey === original.key);
              expect(result.events.map((e) => e.id)).toEqual(stored.map((e) => e.id));
              expect((await read()).length).toBe(before);
              continue;
            }
            const key = `k${i}`;
            let s: Sent;
            if (step.kind === 'topUp') {
              s = {
                key,
                commandType: 'CreditTopUp',
                command: {
                  type: 'CreditTopUp',
                  studentId: STUDENT,
                  topUpId: `tu_${i}`,
                  paymentIntentId: `pi_${i}`,
                  amount: step.amount,
                  currency: 'usd',
                  entryId: uuid(`entry-${i}`),
                },
              };
            } else if (step.kind === 'hold') {
              const holdId = uuid(`hold-${i}`);
              s = {
                key,
                commandType: 'PlaceWalletHold',
                command: {
                  type: 'PlaceWalletHold',
                  studentId: STUDENT,
                  holdId,
                  bookingId: `bk_${i}`,
                  tutorId: 'tut_1',
                  amount: step.amount,
                  currency: 'usd',
                  scheduledAt: '2026-02-01T10:00:00.000Z',
                  placedAt: '2026-01-01T10:00:00.000Z',
                  timeZone: 'UTC',
                  entryId: uuid(`entry-${i}`),
                },
              };
            } else {
              if (holds.length === 0) continue;
              const holdId = holds[step.hold % holds.length]!;
              s =
                step.kind === 'capture'
                  ? {
                      key,
                      commandType: 'CaptureWalletHold',
                      command: {
                        type: 'CaptureWalletHold',
                        studentId: STUDENT,
                        holdId,
                        captured: 1,
                        tutorShare: 1,
                        commission: 0,
                        entryId: uuid(`entry-${i}`),
                      },
                    }
                  : {
                      key,
                      commandType: 'ReleaseWalletHold',
                      command: {
                        type: 'ReleaseWalletHold',
                        studentId: STUDENT,
                        holdId,
                        reason: 'cancelled',
                        fee: 0,
                        tutorShare: 0,
                        commission: 0,
                        entryId: uuid(`entry-${i}`),
                      },
                    };
            }
            let result: Awaited<ReturnType<typeof send>>;
            try {
              result = await send(s);
            } catch (error) {
              if (error instanceof DomainError) continue;
              throw error;
            }
            expect(result.replayed).toBe(false);
            sent.push(s);
            const c = s.command;
            if (c.type === 'CreditTopUp') model += c.amount;
            if (c.type === 'PlaceWalletHold') {
              model -= c.amount;
              holds.push(c.holdId);
            }
            if (c.type === 'CaptureWalletHold') {
              const hold = result.state.holds.get(c.holdId)!;
              model += hold.amount - c.captured;
            }
            if (c.type === 'ReleaseWalletHold') model += result.state.holds.get(c.holdId)!.amount;
            const events = await read();
            expect(plain(result.state)).toEqual(
              plain(
                fold(
                  walletDecider,
                  events.map((e) => ({ type: e.type, data: e.data }) as WalletEvent),
                ),
              ),
            );
          }

          const events = await read();
          const full = fold(
            walletDecider,
            events.map((e) => ({ type: e.type, data: e.data }) as WalletEvent),
          );
          const loaded = await newHandler().load(walletDecider, STREAM);
          expect(plain(loaded.state)).toEqual(plain(full));
          expect(loaded.revision).toBe(BigInt(events.length - 1));
          const available = full.totals.creditsPosted - full.totals.debitsPosted - full.totals.debitsPending;
          expect(available).toBe(model);
          expect(available).toBeGreaterThanOrEqual(0);
          // Every key appended once, every hold resolved at most once.
          const keys = events.map((e) => e.metadata.idempotencyKey);
          expect(new Set(keys).size).toBe(keys.length);
          const resolutions = events.filter(
            (e) => e.type === 'WalletHoldCaptured' || e.type === 'WalletHoldReleased',
          );
          const resolvedHolds = resolutions.map((e) => (e.data as { holdId: string }).holdId);
          expect(new Set(resolvedHolds).size).toBe(resolvedHolds.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});
