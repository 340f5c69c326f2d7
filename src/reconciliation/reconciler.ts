import { randomUUID } from 'node:crypto';
import type { CommandContext } from '../commands/context.js';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import { invariant } from '../domain/errors.js';
import { ENTITY_ID_PATTERN, eventId } from '../domain/ids.js';
import type { Actor } from '../domain/schema.js';
import { reconciliationStream } from '../domain/streams.js';
import type { EventStore, JsonObject } from '../eventstore/port.js';
import type { BalanceTransactionRecord, StripeBalanceSource } from '../stripe/gateway.js';
import type { LedgerFactSource } from './ledgerFacts.js';
import { LedgerIndex } from './ledgerIndex.js';
import type { ReconciliationReadModel } from './readModel.js';
import type {
  DriftRow,
  ReconciliationItem,
  ReconciliationRun,
  ReconciliationScope,
  ReconciliationSummary,
} from './types.js';

export interface ReconcilerOptions {
  /** Balance transactions and ledger facts this close outside the window still match (clock skew, webhook lag). */
  slackSeconds?: number;
  /** Stripe page size (1..100). */
  pageSize?: number;
  /** Exceptions listed in the report and recorded; the rest are counted. */
  maxItems?: number;
  /** Items per ReconciliationItemsRecorded event / read-model insert. */
  itemsChunk?: number;
  autoBookFees?: boolean;
  maxIndexEntries?: number;
}

export interface ReconcilerDeps {
  stripe: StripeBalanceSource;
  /** A fresh fact source per run (event store: eventStoreFactSource(store)). */
  ledger: () => LedgerFactSource;
  /** Records the run as events in reconciliation-{t}.{runId}; omitted (bench): not recorded. */
  store?: EventStore;
  readModel?: ReconciliationReadModel;
  /** Books unbooked Stripe fees (recordStripeCharge kind 'fee'); omitted: fees are only reported. */
  commands?: LedgerCommands;
  clock: () => Date;
  options?: ReconcilerOptions;
}

export interface RunRequest {
  tenantId: string;
  scope: { from: Date; to: Date } | { payout: string; connectedAccountId?: string };
  runId?: string;
  actor?: Actor;
  onProgress?: (p: { scanned: number; matched: number; exceptions: number }) => void;
}

const PROGRESS_EVERY = 1_000;

/**
 * Matches Stripe balance transactions against the ledger (see src/reconciliation/README.md):
 * 1. builds a LedgerIndex of ledger facts (ledgerFacts.ts) from `from - slack` on;
 * 2. streams balance transactions page by page (newest first, `pageSize`), classifying each one in
 *    the window: matched, missing_in_ledger, amount_mismatch (amount, currency or fee) or unbooked_fee
 *    (booked on the spot, idempotently, when commands are given);
 * 3. ledger facts in the window that no transaction matched are missing_in_stripe;
 * 4. compares the ledger's stripe:balance with Stripe's balance (drift).
 * Memory: the index plus one page plus at most maxItems listed exceptions.
 */
export class Reconciler {
  private readonly slackSeconds: number;
  private readonly pageSize: number;
  private readonly maxItems: number;
  private readonly itemsChunk: number;
  private readonly autoBookFees: boolean;
  private readonly maxIndexEntries: number;

  constructor(private readonly deps: ReconcilerDeps) {
    const o = deps.options ?? {};
    this.slackSeconds = o.slackSeconds ?? 3_600;
    this.pageSize = o.pageSize ?? 100;
    this.maxItems = o.maxItems ?? 10_000;
    this.itemsChunk = o.itemsChunk ?? 200;
    this.autoBookFees = o.autoBookFees ?? true;
    this.maxIndexEntries = o.maxIndexEntries ?? 5_000_000;
    invariant(this.slackSeconds >= 0 && this.slackSeconds <= 7 * 86_400, 'slackSeconds must be 0..604800');
    invariant(this.itemsChunk >= 1 && this.itemsChunk <= 1_000, 'itemsChunk must be 1..1000');
    invariant(this.maxItems >= 0 && this.maxItems <= 1_000_000, 'maxItems must be 0..1000000');
  }

  async run(request: RunRequest): Promise<ReconciliationRun> {
    const started = Date.now();
    /** Fees this run booked, per currency (the fact source was read before they were booked). */
    const bookedThisRun = new Map<string, number>();
    const { tenantId } = request;
    const runId = request.runId ?? randomUUID();
    invariant(ENTITY_ID_PATTERN.test(runId), `bad run id ${runId}`);
    const actor = request.actor ?? { id: 'reconciler', role: 'service' };
    const scope: ReconciliationScope =
      'payout' in request.scope
        ? {
            kind: 'payout',
            payout: request.scope.payout,
            connectedAccountId: request.scope.connectedAccountId ?? null,
          }
        : { kind: 'range', from: request.scope.from.toISOString(), to: request.scope.to.toISOString() };
    if (scope.kind === 'range') invariant(scope.from < scope.to, 'from must be before to');
    const recorder = new RunRecorder(this.deps, tenantId, runId, actor);
    const startedAt = this.deps.clock().toISOString();
    await recorder.started(scope, startedAt);

    const summary: ReconciliationSummary = {
      scanned: 0,
      matched: 0,
      missingInLedger: 0,
      missingInStripe: 0,
      amountMismatch: 0,
      unbookedFee: 0,
      feesBooked: 0,
      ignored: 0,
      otherTenant: 0,
      itemsRecorded: 0,
      truncated: false,
      drift: [],
      durationMs: 0,
    };
    const listed: ReconciliationItem[] = [];
    let chunk: ReconciliationItem[] = [];
    const emit = async (item: ReconciliationItem): Promise<void> => {
      const counter = {
        missing_in_ledger: 'missingInLedger',
        missing_in_stripe: 'missingInStripe',
        amount_mismatch: 'amountMismatch',
        unbooked_fee: 'unbookedFee',
      } as const;
      summary[counter[item.classification]]++;
      if (listed.length >= this.maxItems) {
        summary.truncated = true;
        return;
      }
      listed.push(item);
      chunk.push(item);
      if (chunk.length >= this.itemsChunk) {
        await recorder.items(chunk);
        summary.itemsRecorded += chunk.length;
        chunk = [];
      }
    };

    try {
      const fromMs = scope.kind === 'range' ? Date.parse(scope.from) : Number.NEGATIVE_INFINITY;
      const toMs = scope.kind === 'range' ? Date.parse(scope.to) : Number.POSITIVE_INFINITY;
      const slackMs = this.slackSeconds * 1_000;

      // 1. Ledger facts from the window's start (minus slack) on.
      const ledger = this.deps.ledger();
      const index = new LedgerIndex(this.maxIndexEntries);
      for await (const fact of ledger.facts(tenantId)) {
        if (fact.occurredAtMs >= fromMs - slackMs) index.put(fact);
      }

      // 2. Stripe's side, page by page.
      const filter =
        scope.kind === 'range'
          ? {
              created: {
                gte: Math.floor((fromMs - slackMs) / 1_000),
                lt: Math.ceil((toMs + slackMs) / 1_000),
              },
              pageSize: this.pageSize,
            }
          : {
              payout: scope.payout,
              pageSize: this.pageSize,
              ...(scope.connectedAccountId ? { connectedAccountId: scope.connectedAccountId } : {}),
            };
      for await (const txn of this.deps.stripe.listBalanceTransactions(filter)) {
        const createdMs = txn.created * 1_000;
        const inWindow = createdMs >= fromMs && createdMs < toMs;
        if (txn.metadata.tenantId !== undefined && txn.metadata.tenantId !== tenantId) {
          if (inWindow) summary.otherTenant++;
          continue;
        }
        const key = matchKey(txn);
        if (key === null) {
          if (inWindow) summary.ignored++;
          continue;
        }
        const fact = index.take(key);
        if (!inWindow) continue; // slack: only used to mark ledger facts as matched
        summary.scanned++;
        await this.classify(txn, key, fact, index, { tenantId, runId, summary, emit, bookedThisRun });
        if (summary.scanned % PROGRESS_EVERY === 0) {
          request.onProgress?.({
            scanned: summary.scanned,
            matched: summary.matched,
            exceptions: summary.scanned - summary.matched,
          });
        }
      }

      // 3. Ledger facts no transaction matched: a second pass over the ledger finds their keys (the
      // index keeps hashes, not keys).
      for await (const fact of this.deps.ledger().facts(tenantId)) {
        if (fact.key.startsWith('fee:')) continue; // checked with their transaction
        const expected =
          scope.kind === 'range'
            ? fact.side === 'platform' && fact.occurredAtMs >= fromMs && fact.occurredAtMs < toMs
            : fact.key === scope.payout;
        if (!expected || !index.reportUnmatched(fact.key)) continue;
        await emit({
          classification: 'missing_in_stripe',
          stripeObjectId: fact.key.replace(/:(opened|won)$/, ''),
          balanceTransactionId: null,
          type: null,
          currency: fact.currency,
          stripeAmount: null,
          ledgerAmount: fact.amount,
          stripeFee: null,
          ledgerFee: null,
          feeBooked: false,
          detail: `the ledger has ${fact.key} (${fact.amount} ${fact.currency}) but Stripe has no balance transaction for it`,
        });
      }

      // 4. Drift of stripe:balance (platform runs only: a payout run looks at one connected account).
      if (scope.kind === 'range') {
        const ledgerBalance = new Map(ledger.stripeBalance());
        for (const [currency, fee] of bookedThisRun) {
          ledgerBalance.set(currency, (ledgerBalance.get(currency) ?? 0) - fee);
        }
        summary.drift = await this.drift(ledgerBalance);
      }

      if (chunk.length > 0) {
        await recorder.items(chunk);
        summary.itemsRecorded += chunk.length;
        chunk = [];
      }
      summary.durationMs = Date.now() - started;
      const completedAt = this.deps.clock().toISOString();
      await recorder.completed(summary, completedAt);
      return {
        runId,
        tenantId,
        status: 'completed',
        scope,
        startedAt,
        completedAt,
        summary,
        error: null,
        items: listed,
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await recorder.failed(message, this.deps.clock().toISOString()).catch(() => undefined);
      throw error;
    }
  }

  private async classify(
    txn: BalanceTransactionRecord,
    key: string,
    fact: { amount: number; currency: string } | null,
    index: LedgerIndex,
    run: {
      tenantId: string;
      runId: string;
      summary: ReconciliationSummary;
      emit: (item: ReconciliationItem) => Promise<void>;
      bookedThisRun: Map<string, number>;
    },
  ): Promise<void> {
    const { tenantId, runId, summary, emit, bookedThisRun } = run;
    const base = {
      stripeObjectId: key.replace(/:(opened|won)$/, ''),
      balanceTransactionId: txn.id,
      type: txn.type,
      currency: txn.currency,
      stripeAmount: txn.amount,
      stripeFee: txn.fee,
      feeBooked: false,
    };
    if (txn.net !== txn.amount - txn.fee) {
      await emit({
        ...base,
        classification: 'amount_mismatch',
        ledgerAmount: fact?.amount ?? null,
        ledgerFee: null,
        detail: `Stripe's net ${txn.net} is not amount ${txn.amount} - fee ${txn.fee}`,
      });
      return;
    }
    if (!fact) {
      await emit({
        ...base,
        classification: 'missing_in_ledger',
        ledgerAmount: null,
        ledgerFee: null,
        detail: `Stripe ${txn.type} ${key} of ${txn.amount} ${txn.currency} (fee ${txn.fee}) has no ledger entry`,
      });
      return;
    }
    if (fact.currency !== txn.currency || fact.amount !== txn.amount) {
      await emit({
        ...base,
        classification: 'amount_mismatch',
        ledgerAmount: fact.amount,
        ledgerFee: index.peek(`fee:${txn.id}`)?.amount ?? null,
        detail: `Stripe ${txn.amount} ${txn.currency}, ledger ${fact.amount} ${fact.currency}`,
      });
      return;
    }
    const booked = txn.fee === 0 ? null : index.take(`fee:${txn.id}`);
    if (txn.fee !== 0 && !booked) {
      let feeBooked = false;
      if (this.autoBookFees && this.deps.commands && txn.fee > 0) {
        const ctx: CommandContext = {
          tenantId,
          actor: { id: 'reconciler', role: 'service' },
          idempotencyKey: `stripe-fee:${txn.id}`,
          correlationId: runId,
          causationId: runId,
        };
        await this.deps.commands.recordStripeCharge(ctx, {
          kind: 'fee',
          stripeObjectId: txn.id,
          amount: { amount: txn.fee, currency: txn.currency },
          description: `Stripe fee on ${txn.type} ${key} (balance transaction ${txn.id})`,
        });
        feeBooked = true;
        summary.feesBooked++;
        bookedThisRun.set(txn.currency, (bookedThisRun.get(txn.currency) ?? 0) + txn.fee);
      }
      await emit({
        ...base,
        classification: 'unbooked_fee',
        ledgerAmount: fact.amount,
        ledgerFee: null,
        feeBooked,
        detail: feeBooked
          ? `fee ${txn.fee} was not booked; booked now`
          : `fee ${txn.fee} is not booked in the ledger`,
      });
      return;
    }
    if (booked && (booked.amount !== txn.fee || booked.currency !== txn.currency)) {
      await emit({
        ...base,
        classification: 'amount_mismatch',
        ledgerAmount: fact.amount,
        ledgerFee: booked.amount,
        detail: `Stripe fee ${txn.fee} ${txn.currency}, ledger fee ${booked.amount} ${booked.currency}`,
      });
      return;
    }
    summary.matched++;
  }

  private async drift(ledger: Map<string, number>): Promise<DriftRow[]> {
    const stripe = await this.deps.stripe.retrieveBalance();
    const sum = (amounts: { currency: string; amount: number }[]) => {
      const totals = new Map<string, number>();
      for (const b of amounts) totals.set(b.currency, (totals.get(b.currency) ?? 0) + b.amount);
      return totals;
    };
    const available = sum(stripe.available);
    const pending = sum(stripe.pending);
    const currencies = [...new Set([...ledger.keys(), ...available.keys(), ...pending.keys()])].sort();
    return currencies.map((currency) => {
      const l = ledger.get(currency) ?? 0;
      const a = available.get(currency) ?? 0;
      const p = pending.get(currency) ?? 0;
      return {
        currency,
        ledger: l,
        stripe: a + p,
        difference: l - (a + p),
        stripeAvailable: a,
        stripePending: p,
      };
    });
  }
}

/** The stripe-object key a balance transaction matches on, or null when it is not a ledger fact. */
export function matchKey(txn: BalanceTransactionRecord): string | null {
  switch (txn.type) {
    case 'charge':
    case 'payment':
      // A platform charge matches the PaymentIntent the ledger knows; a connected account's incoming
      // transfer (py_) is not a ledger fact of its own (the transfer is, on the platform side).
      if (txn.type === 'payment' && !txn.paymentIntentId) return null;
      return txn.paymentIntentId ?? txn.sourceId;
    case 'refund':
    case 'transfer':
    case 'payout':
      return txn.sourceId;
    case 'refund_failure':
      // The money of a failed card refund back at Stripe: the ledger's WalletCardRefundFailed.
      return txn.sourceId === null ? null : `${txn.sourceId}:failed`;
    case 'adjustment':
      if (txn.sourceId === null) return null;
      if (txn.reportingCategory === 'dispute') return `${txn.sourceId}:opened`;
      if (txn.reportingCategory === 'dispute_reversal') return `${txn.sourceId}:won`;
      return txn.sourceId;
    default:
      return null;
  }
}

/** Writes the run to its event stream (and the read model), in order, with exact expected revisions. */
class RunRecorder {
  private revision: bigint | 'no_stream' = 'no_stream';
  private index = 0;
  private chunkNo = 0;
  private readonly stream: string;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly tenantId: string,
    private readonly runId: string,
    private readonly actor: Actor,
  ) {
    this.stream = reconciliationStream(tenantId, runId);
  }

  async started(scope: ReconciliationScope, startedAt: string): Promise<void> {
    await this.append('ReconciliationRunStarted', { runId: this.runId, scope: { ...scope }, startedAt });
    await this.deps.readModel?.started(this.tenantId, this.runId, scope, startedAt);
  }

  async items(items: ReconciliationItem[]): Promise<void> {
    const chunk = this.chunkNo++;
    await this.append('ReconciliationItemsRecorded', {
      runId: this.runId,
      chunk,
      items: items.map((i) => ({ ...i })),
    });
    await this.deps.readModel?.items(this.tenantId, this.runId, chunk, items);
  }

  async completed(summary: ReconciliationSummary, completedAt: string): Promise<void> {
    const json = { ...summary, drift: summary.drift.map((d) => ({ ...d })) };
    await this.append('ReconciliationRunCompleted', { runId: this.runId, summary: json, completedAt });
    await this.deps.readModel?.completed(this.tenantId, this.runId, summary, completedAt);
  }

  async failed(error: string, failedAt: string): Promise<void> {
    await this.append('ReconciliationRunFailed', { runId: this.runId, error, failedAt });
    await this.deps.readModel?.failed(this.tenantId, this.runId, error, failedAt);
  }

  private async append(type: string, data: JsonObject): Promise<void> {
    const store = this.deps.store;
    if (!store) return;
    const result = await store.append(
      this.stream,
      [
        {
          id: eventId(this.tenantId, 'Reconcile', this.runId, this.index++),
          type,
          data,
          metadata: {
            tenantId: this.tenantId,
            correlationId: this.runId,
            causationId: this.runId,
            actor: this.actor,
            idempotencyKey: `reconcile:${this.runId}`,
            occurredAt: this.deps.clock().toISOString(),
            schemaVersion: 1,
          },
        },
      ],
      { expectedRevision: this.revision },
    );
    this.revision = result.nextExpectedRevision;
  }
}
