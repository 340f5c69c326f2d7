import type { Knex } from 'knex';

/**
 * Documents (src/documents): one row per issued receipt, invoice or credit note, written by the document
 * issuer from the DocumentIssued events it appends (or finds) in the series streams. The numbers are
 * facts of the event store; this table is their read side plus the rendered PDF (bounded in size by the
 * issuer), so it can be rebuilt from the docseries streams at any time.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('documents', (t) => {
    t.uuid('document_id').primary();
    t.text('tenant_id').notNullable();
    t.text('kind').notNullable();
    t.text('series_id').notNullable();
    t.bigInteger('sequence').notNullable();
    t.text('number').notNullable();
    t.text('owner_kind').notNullable();
    t.text('owner_id').notNullable();
    t.timestamp('issued_at', { useTz: true }).notNullable();
    t.text('currency').notNullable();
    t.bigInteger('total').notNullable();
    t.text('subject_kind').notNullable();
    t.text('subject_id').notNullable();
    t.uuid('source_event_id').notNullable();
    t.uuid('references_document_id');
    // Position of the DocumentIssued event: the order documents are listed in, and the list's cursor.
    t.bigInteger('position').notNullable();
    t.jsonb('data').notNullable();
    t.binary('pdf').notNullable();
    t.text('pdf_sha256').notNullable();
    // A second document with the same number in a series is impossible by construction; the database
    // says so too.
    t.unique(['tenant_id', 'series_id', 'sequence']);
  });
  await knex.raw(
    'CREATE INDEX documents_by_owner ON documents (tenant_id, owner_kind, owner_id, position DESC)',
  );
  await knex.raw('CREATE INDEX documents_by_tenant ON documents (tenant_id, position DESC)');
  await knex.raw('CREATE INDEX documents_by_subject ON documents (tenant_id, subject_kind, subject_id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('documents');
}
