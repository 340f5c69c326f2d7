import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandHandler } from '../../src/commands/commandHandler.js';
import { issueDocument } from '../../src/documents/issuer.js';
import { documentId } from '../../src/documents/rules.js';
import {
  DOCUMENT_KINDS,
  type DocumentDraft,
  type DocumentKind,
  seriesIdOf,
} from '../../src/domain/documentSeries.js';
import { decodeEvent } from '../../src/domain/events.js';
import { categoryPrefix } from '../../src/domain/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  EventStoreUnavailableError,
  type EventToAppend,
} from '../../src/eventstore/port.js';

/**
 * Gapless numbering under concurrency and crashes. Several issuers (each its own process: its own
 * command handler and cache) issue overlapping lists of documents at once, over a store that dies at
 * random before an append or right after one (the append is in, the issuer never hears of it). Each
 * issuer retries what failed, as the runner does. Reference model: the set of distinct documents per
 * series. After everything settled, every series holds each of its documents exactly once, numbered
 * 1..n in stream order, and a document re-issued anywhere got the number it had.
 */
const T = 'num';
const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);

class DyingStore implements EventStore {
  readonly kind = 'memory' as const;
  constructor(
    readonly inner: EventStore,
    private readonly dies: () => 'before' | 'after' | null,
    private readonly yieldPoint: () => Promise<void>,
  ) {}
  async append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    await this.yieldPoint();
    const death = this.dies();
    if (death === 'before') throw new EventStoreUnavailableError('died before the append');
    const result = await this.inner.append(streamName, events, options);
    if (death === 'after') throw new EventStoreUnavailableError('died after the append');
    return result;
  }
  readStream: EventStore['readStream'] = async (s, o) => {
    await this.yieldPoint();
    return this.inner.readStream(s, o);
  };
  readAll: EventStore['readAll'] = (o) => this.inner.readAll(o);
  findEvent: EventStore['findEvent'] = (s, id) => this.inner.findEvent(s, id);
  subscribe: EventStore['subscribe'] = (o) => this.inner.subscribe(o);
  headPosition = () => this.inner.headPosition();
  ping = () => this.inner.ping();
  close = async () => undefined;
}

const drafts = (subjects: Array<{ kind: DocumentKind; year: number; subject: number }>): DocumentDraft[] =>
  subjects.map(({ kind, year, subject }) => ({
    documentId: documentId(T, kind, `s:${subject}`),
    kind,
    issuedAt: `${year}-06-01T12:00:00.000Z`,
    owner: { kind: 'student', id: 's1' },
    issuer: { kind: 'platform', id: T, name: 'Platform', address: [], taxId: null },
    recipient: { kind: 'student', id: 's1', name: 'Student s1', address: [], taxId: null },
    currency: 'usd',
    locale: 'en-US',
    lines: [{ description: `subject ${subject}`, amount: 100 + subject, taxAmount: 0 }],
    subtotal: 100 + subject,
    tax: 0,
    total: 100 + subject,
    taxRate: null,
    settlement: 'wallet',
    subject: { kind: 's', id: String(subject) },
    source: { eventId: documentId(T, kind, `source:${subject}`), eventType: 'WalletToppedUp' },
    references: null,
  }));

describe('document numbering', () => {
  it('is consecutive per series, without gaps or duplicates, under concurrent issuers and crashes between steps', async () => {
    const subject = fc.record({
      kind: fc.constantFrom(...DOCUMENT_KINDS),
      // The year a document is issued in: the same subject is always the same document.
      year: fc.constantFrom(2026, 2027),
      subject: fc.integer({ min: 0, max: 30 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(subject, { minLength: 1, maxLength: 15 }), { minLength: 1, maxLength: 4 }),
        fc.infiniteStream(fc.constantFrom<'before' | 'after' | null>(null, null, null, 'before', 'after')),
        fc.scheduler(),
        async (perIssuer, deaths, s) => {
          // One document per (kind, subject): its year is fixed by the first list that names it.
          const yearOf = new Map<string, number>();
          const lists = perIssuer.map((list) =>
            drafts(
              list.map((d) => {
                const key = `${d.kind}:${d.subject}`;
                if (!yearOf.has(key)) yearOf.set(key, d.year);
                return { ...d, year: yearOf.get(key)! };
              }),
            ),
          );
          const memory = new MemoryEventStore();
          const deathIterator = deaths[Symbol.iterator]();
          const store = new DyingStore(
            memory,
            () => deathIterator.next().value as 'before' | 'after' | null,
            () => s.schedule(Promise.resolve()),
          );
          const numberOf = new Map<string, number>();
          const issuers = lists.map(async (list, i) => {
            const handler = new CommandHandler({
              store,
              clock: () => new Date('2026-06-01T12:00:00Z'),
              random: () => 0.5,
            });
            for (const draft of list) {
              for (let attempt = 0; ; attempt++) {
                try {
                  const { document } = await issueDocument(handler, T, draft, {
                    eventId: draft.source.eventId,
                    correlationId: `issuer-${i}`,
                  });
                  const known = numberOf.get(draft.documentId);
                  if (known !== undefined) expect(document.sequence).toBe(known);
                  numberOf.set(draft.documentId, document.sequence);
                  break;
                } catch (error) {
                  if (!(error instanceof EventStoreUnavailableError) || attempt > 50) throw error;
                }
              }
            }
          });
          await s.waitFor(Promise.all(issuers));

          const expected = new Map<string, Set<string>>();
          for (const d of lists.flat()) {
            const series = seriesIdOf(d.kind, d.issuedAt);
            if (!expected.has(series)) expected.set(series, new Set());
            expected.get(series)!.add(d.documentId);
          }
          const events = (await memory.readAll({ maxCount: 10_000 }))
            .filter((e) => e.streamName.startsWith(categoryPrefix('docseries', T)))
            .map(decodeEvent);
          const actual = new Map<string, Array<{ id: string; sequence: number }>>();
          for (const e of events) {
            if (e.type !== 'DocumentIssued') throw new Error(e.type);
            const list = actual.get(e.data.seriesId) ?? [];
            list.push({ id: e.data.documentId, sequence: e.data.sequence });
            actual.set(e.data.seriesId, list);
            expect(e.stream.id).toBe(e.data.seriesId);
          }
          expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
          for (const [series, ids] of expected) {
            const issued = actual.get(series)!;
            expect(issued.map((d) => d.sequence)).toEqual(issued.map((_, i) => i + 1));
            expect(new Set(issued.map((d) => d.id)).size).toBe(issued.length);
            expect(new Set(issued.map((d) => d.id))).toEqual(ids);
            for (const d of issued) expect(numberOf.get(d.id)).toBe(d.sequence);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
