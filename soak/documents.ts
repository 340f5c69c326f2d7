import type { Http, HttpRequest } from './http.js';
import { refundedTotal, type TenantModel } from './model.js';
import { sleep } from './proc.js';
import type { Recorder } from './recorder.js';
import type { Rng } from './rng.js';
import type { TokenMinter } from './tokens.js';
import { asObject } from './workload.js';

const PAGE = 200;
const MAX_PAGES = 500;
const POLL_MS = 1_000;
const READERS = 16;

export interface DocumentRow {
  documentId: string;
  kind: string;
  seriesId: string;
  sequence: number;
  subject: string;
}

function asDocument(value: unknown): DocumentRow {
  const o = asObject(value);
  const subject = asObject(o.subject);
  if (
    typeof o.documentId !== 'string' ||
    typeof o.kind !== 'string' ||
    typeof o.seriesId !== 'string' ||
    typeof o.sequence !== 'number' ||
    typeof subject.kind !== 'string' ||
    typeof subject.id !== 'string'
  ) {
    throw new Error(`not a document summary: ${JSON.stringify(value).slice(0, 200)}`);
  }
  return {
    documentId: o.documentId,
    kind: o.kind,
    seriesId: o.seriesId,
    sequence: o.sequence,
    subject: `${subject.kind}:${subject.id}`,
  };
}

/**
 * After a run with kill -9 and database crashes (docs/documents.md, "Gapless numbers"): every series of
 * every tenant is numbered 1..n with no gap and no repeat, no document exists twice, and every
 * acknowledged money event the model knows has its documents: a receipt per credited top-up, a receipt
 * and a commission invoice per completed booking (the soak's commission is above zero), a receipt per
 * late cancellation with a fee, a refund receipt per acknowledged refund. The issuer runs behind the
 * ledger, so this waits (bounded) for it.
 */
export class DocumentChecks {
  constructor(
    private readonly http: Http,
    private readonly tokens: TokenMinter,
    private readonly recorder: Recorder,
    private readonly rng: Rng,
  ) {}

  private reader = 0;

  /** A one-line result; violations go to the recorder. */
  async check(tenant: TenantModel, credited: Set<string>, budgetMs: number): Promise<string> {
    const t = tenant.tenantId;
    const expected = new Set<string>();
    for (const topUpId of credited) expected.add(`receipt topup:${topUpId}`);
    let refunds = 0;
    for (const b of tenant.bookings.values()) {
      if (b.status === 'completed') {
        expected.add(`receipt booking:${b.bookingId}`);
        expected.add(`invoice booking:${b.bookingId}`);
      }
      if (b.status === 'cancelled' && b.cancellationFee > 0) expected.add(`receipt booking:${b.bookingId}`);
      if (refundedTotal(b) > 0) refunds += b.refunds.size;
    }
    const deadline = Date.now() + budgetMs;
    let docs = await this.list(tenant);
    let missing = missingDocuments(docs, expected, refunds);
    while (missing.length > 0 && Date.now() < deadline) {
      await sleep(POLL_MS);
      docs = await this.list(tenant);
      missing = missingDocuments(docs, expected, refunds);
    }
    for (const m of missing.slice(0, 20)) this.recorder.violation('missing_event', `${t}: no document: ${m}`);

    const problems = numberingProblems(docs);
    for (const p of problems) this.recorder.violation(p.category, `${t}: ${p.detail}`);
    const series = new Set(docs.map((d) => d.seriesId)).size;
    return `${t}: ${docs.length} documents in ${series} series${problems.length ? `; ${problems.length} numbering problems` : ', numbered without gaps'}${missing.length ? `; ${missing.length} missing` : ''}`;
  }

  private async list(tenant: TenantModel): Promise<DocumentRow[]> {
    // A caller per listing: rate limits are per caller, and polling is not the workload being measured.
    this.reader = (this.reader + 1) % READERS;
    const token = await this.tokens.token(tenant.tenantId, `soak-documents-${this.reader}`, 'finance_admin');
    const out: DocumentRow[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const req: HttpRequest = {
        kind: 'final',
        method: 'GET',
        path: `/v1/documents?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`,
        token,
        accept: (s) => s === 200,
      };
      const r = await this.http.command(req, this.rng, { maxAttempts: 6, budgetMs: 20_000 });
      if (r.status !== 200) throw new Error(`GET /v1/documents answered ${r.status} ${r.code ?? ''}`);
      const body = asObject(r.json);
      const items: unknown[] = Array.isArray(body.items) ? body.items : [];
      out.push(...items.map(asDocument));
      cursor = typeof body.nextCursor === 'string' ? body.nextCursor : null;
      if (cursor === null) return out;
    }
    throw new Error(`more than ${MAX_PAGES * PAGE} documents for ${tenant.tenantId}`);
  }
}

/** Documents the model expects (`{kind} {subject}`) that are not listed, and refund receipts short. */
export function missingDocuments(docs: DocumentRow[], expected: Set<string>, refunds: number): string[] {
  const have = new Set(docs.map((d) => `${d.kind} ${d.subject}`));
  const missing = [...expected].filter((e) => !have.has(e));
  const receipts = docs.filter((d) => d.kind === 'refund_receipt' && d.subject.startsWith('refund:')).length;
  if (receipts < refunds) missing.push(`${refunds - receipts} of ${refunds} refund receipts`);
  return missing;
}

/** A series not numbered 1..n, a document listed twice, two documents of one kind for one subject. */
export function numberingProblems(
  docs: DocumentRow[],
): { category: 'double_effect' | 'invariant_broken'; detail: string }[] {
  const problems: { category: 'double_effect' | 'invariant_broken'; detail: string }[] = [];
  const ids = new Set<string>();
  const subjects = new Set<string>();
  const bySeries = new Map<string, number[]>();
  for (const d of docs) {
    if (ids.has(d.documentId))
      problems.push({ category: 'double_effect', detail: `document ${d.documentId} listed twice` });
    ids.add(d.documentId);
    const subject = `${d.kind} ${d.subject}`;
    if (subjects.has(subject))
      problems.push({ category: 'double_effect', detail: `two documents for ${subject}` });
    subjects.add(subject);
    bySeries.set(d.seriesId, [...(bySeries.get(d.seriesId) ?? []), d.sequence]);
  }
  for (const [series, sequences] of bySeries) {
    sequences.sort((a, b) => a - b);
    const firstWrong = sequences.findIndex((s, i) => s !== i + 1);
    if (firstWrong !== -1) {
      problems.push({
        category: 'invariant_broken',
        detail: `series ${series} is not 1..${sequences.length}: number ${sequences[firstWrong]} in place ${firstWrong + 1}`,
      });
    }
  }
  return problems;
}
