import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/commands/checkpointStore.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService } from '../../src/commands/ledgerService.js';
import { startDocumentIssuer } from '../../src/documents/issuer.js';
import { rebuildDocuments } from '../../src/documents/rebuild.js';
import { DocumentStore } from '../../src/documents/store.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const T = 'docs_rebuild';
const nowMs = Date.parse('2026-05-04T10:00:00.000Z');
const clock = () => new Date(nowMs);
let seq = 0;
const ctx = (role = 'student'): CommandContext => {
  const key = `k${++seq}`;
  return {
    tenantId: T,
    actor: { id: `${role}-1`, role },
    idempotencyKey: key,
    correlationId: key,
    causationId: key,
  };
};

describe('documents rebuild (the documents table against the docseries streams)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('finds lost, altered and orphaned rows, repairs them byte for byte, and then finds nothing', async () => {
    const store = new MemoryEventStore();
    const service = createLedgerService({ store, clock });
    for (const [i, studentId] of ['s1', 's2'].entries()) {
      await service.initiateTopUp(ctx(), {
        topUpId: `tu${i}`,
        studentId,
        amount: { amount: 5_000, currency: 'usd' },
      });
      await service.succeedTopUp(ctx('service'), {
        topUpId: `tu${i}`,
        paymentIntentId: `pi_${i}`,
        amountReceived: 5_000,
        currency: 'usd',
      });
      await service.placeBooking(ctx(), {
        bookingId: `b${i}`,
        studentId,
        tutorId: 'u1',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: new Date(nowMs + 3 * 86_400_000).toISOString(),
      });
      await service.completeBooking(ctx('tutor'), { bookingId: `b${i}` });
    }
    const documents = new DocumentStore(database.db);
    const issuer = startDocumentIssuer({
      store,
      checkpoints: new MemoryCheckpointStore(),
      handler: service.handler,
      documents,
    });
    await issuer.waitForPosition(await store.headPosition(), 30_000);
    await issuer.stop();
    const before = await documents.list(T, { limit: 100 });
    expect(before).toHaveLength(6); // a receipt per top-up, a receipt and an invoice per capture
    const pdfOf = async (id: string) => (await documents.pdf(T, id))?.pdf;
    const [lost, altered, corrupted] = before;
    const lostPdf = await pdfOf(lost!.documentId);
    const alteredPdf = await pdfOf(altered!.documentId);
    const knex = database.db.knex;

    const clean = await rebuildDocuments({ db: database.db, store, documents, repair: false });
    expect(clean).toMatchObject({ issued: 6, unchanged: 6, missing: 0, differing: 0, orphans: 0 });

    // A row lost, one whose stored total was edited, one whose PDF was swapped, and one never issued.
    await knex('documents').where({ document_id: lost!.documentId }).delete();
    const data = (await documents.get(T, altered!.documentId))!.document;
    await knex('documents')
      .where({ document_id: altered!.documentId })
      .update({ data: JSON.stringify({ ...data, total: data.total + 1 }) });
    await knex('documents')
      .where({ document_id: corrupted!.documentId })
      .update({ pdf_sha256: '0'.repeat(64) });
    await knex('documents').insert({
      ...(await knex('documents').where({ document_id: before[3]!.documentId }).first()),
      document_id: '00000000-0000-5000-8000-000000000000',
      sequence: 99,
      number: 'RCT-2026-000099',
    });

    const checked = await rebuildDocuments({ db: database.db, store, documents, repair: false });
    expect(checked).toMatchObject({
      issued: 6,
      unchanged: 3,
      missing: 1,
      differing: 2,
      orphans: 1,
      repaired: false,
    });
    expect(await documents.get(T, lost!.documentId)).toBeNull(); // --check writes nothing

    const repaired = await rebuildDocuments({ db: database.db, store, documents, repair: true });
    expect(repaired).toMatchObject({ missing: 1, differing: 2, orphans: 1, repaired: true });
    expect(await rebuildDocuments({ db: database.db, store, documents, repair: false })).toMatchObject({
      issued: 6,
      unchanged: 6,
      missing: 0,
      differing: 0,
      orphans: 0,
    });
    expect(await documents.list(T, { limit: 100 })).toEqual(before);
    expect(await pdfOf(lost!.documentId)).toEqual(lostPdf);
    expect(await pdfOf(altered!.documentId)).toEqual(alteredPdf);
    expect((await documents.get(T, altered!.documentId))!.document.total).toBe(data.total);
  });
});
