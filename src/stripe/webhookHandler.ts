import type Stripe from 'stripe';
import type { CommandContext } from '../commands/context.js';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import { DomainError } from '../domain/errors.js';

/**
 * Maps one verified Stripe event to LedgerCommands calls. Every command's idempotency key derives from
 * the Stripe object and the fact (`pi-succeeded:pi_...`, the same keys the synchronous command path
 * uses), so duplicates, redeliveries and the synchronous path racing the webhook append nothing twice.
 *
 * Out-of-order deliveries: a fact that no longer applies (a payment_failed for a top-up that has
 * since succeeded, a payout.paid for a payout already failed) is acknowledged as `stale`, not failed:
 * Stripe would otherwise retry it for days and nothing would change. Facts we must not lose but cannot
 * apply yet (the top-up or payout is not in the ledger yet) answer `retry` so Stripe redelivers.
 */
export type WebhookOutcome =
  | 'applied'
  | 'duplicate'
  | 'stale'
  | 'rejected'
  | 'ignored'
  | 'not_ours'
  | 'retry';

export interface WebhookResult {
  outcome: WebhookOutcome;
  tenantId: string;
  detail?: string;
}

/** What the handler may ask Stripe (optional): the current state of a PaymentIntent. */
export interface PaymentIntentLookup {
  lookupPaymentIntent(id: string): Promise<{ status: string; metadata: Record<string, string> }>;
}

export interface WebhookHandlerDeps {
  commands: LedgerCommands;
  lookup?: PaymentIntentLookup;
}

const TENANT = /^[a-z0-9_]{1,40}$/;
const ENTITY = /^[A-Za-z0-9_-]{1,64}$/;

type Obj = Record<string, unknown>;

function str(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

function num(o: Obj, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

function meta(o: Obj): Record<string, string> {
  const m = o.metadata;
  if (!m || typeof m !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m as Obj)) if (typeof v === 'string') out[k] = v;
  return out;
}

function ctxFor(tenantId: string, event: Stripe.Event, idempotencyKey: string): CommandContext {
  return {
    tenantId,
    actor: { id: 'stripe-webhook', role: 'service' },
    idempotencyKey,
    correlationId: event.id,
    causationId: event.id,
  };
}

export async function handleStripeEvent(
  event: Stripe.Event,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const object = event.data.object as unknown as Obj;
  const type = event.type as string;
  switch (type) {
    case 'payment_intent.succeeded':
    case 'payment_intent.payment_failed':
      return paymentIntentEvent(type, event, object, deps);
    case 'refund.created':
    case 'refund.updated':
      return refundEvent(event, object, deps);
    case 'payout.paid':
    case 'payout.failed':
      return payoutEvent(type, event, object, deps);
    case 'charge.dispute.created':
    case 'charge.dispute.closed':
      return disputeEvent(type, event, object, deps);
    default:
      // charge.succeeded/failed/refunded and transfer.created duplicate facts handled above (the refund
      // events name the refund; the payout flow records the transfer when it submits); anything else is
      // not a ledger fact. Acknowledged so Stripe stops sending it.
      return { outcome: 'ignored', tenantId: '', detail: `event type ${type} is not a ledger fact` };
  }
}

async function run(
  tenantId: string,
  fn: () => Promise<unknown>,
  notYet: (error: DomainError) => boolean = () => false,
): Promise<WebhookResult> {
  try {
    await fn();
    return { outcome: 'applied', tenantId };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    if (error.code === 'not_found' || notYet(error))
      return { outcome: 'retry', tenantId, detail: error.message };
    if (error.code === 'invalid_state') return { outcome: 'stale', tenantId, detail: error.message };
    // validation_failed, currency_mismatch, limit_exceeded: retrying cannot fix it; the reconciler and
    // the logs surface it for a human.
    return { outcome: 'rejected', tenantId, detail: `${error.code}: ${error.message}` };
  }
}

async function paymentIntentEvent(
  type: 'payment_intent.succeeded' | 'payment_intent.payment_failed',
  event: Stripe.Event,
  pi: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(pi, 'id');
  const m = meta(pi);
  const tenantId = m.tenantId;
  const topUpId = m.topUpId;
  if (!id || !tenantId || !TENANT.test(tenantId) || !topUpId || !ENTITY.test(topUpId)) {
    return {
      outcome: 'not_ours',
      tenantId: '',
      detail: 'PaymentIntent without our tenantId/topUpId metadata',
    };
  }
  if (type === 'payment_intent.succeeded') {
    const amountReceived = num(pi, 'amount_received');
    const currency = str(pi, 'currency');
    if (amountReceived === undefined || !currency)
      return { outcome: 'rejected', tenantId, detail: 'malformed PaymentIntent' };
    return run(tenantId, () =>
      deps.commands.succeedTopUp(ctxFor(tenantId, event, `pi-succeeded:${id}`), {
        topUpId,
        paymentIntentId: id,
        amountReceived,
        currency: currency.toLowerCase(),
      }),
    );
  }
  // A decline leaves the PaymentIntent open for another attempt; if that attempt already succeeded
  // (this failure arrives late), the failure is stale. Ask Stripe for the current status when we can.
  if (deps.lookup) {
    const current = await deps.lookup.lookupPaymentIntent(id);
    if (current.status === 'succeeded' || current.status === 'processing') {
      return { outcome: 'stale', tenantId, detail: `PaymentIntent is ${current.status} now` };
    }
  }
  const lastError = pi.last_payment_error as Obj | null | undefined;
  const reason = lastError
    ? `${str(lastError, 'decline_code') ?? str(lastError, 'code') ?? 'payment_failed'}: ${str(lastError, 'message') ?? ''}`
    : 'payment_failed';
  return run(tenantId, () =>
    deps.commands.failTopUp(ctxFor(tenantId, event, `pi-failed:${id}`), {
      topUpId,
      paymentIntentId: id,
      reason,
    }),
  );
}

async function refundEvent(
  event: Stripe.Event,
  refund: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(refund, 'id');
  const status = str(refund, 'status');
  const amount = num(refund, 'amount');
  const currency = str(refund, 'currency');
  const paymentIntentId = str(refund, 'payment_intent');
  if (!id || amount === undefined || !currency)
    return { outcome: 'rejected', tenantId: '', detail: 'malformed refund' };
  let m = meta(refund);
  if ((!m.tenantId || !m.topUpId) && paymentIntentId && deps.lookup) {
    m = { ...(await deps.lookup.lookupPaymentIntent(paymentIntentId)).metadata, ...m };
  }
  const tenantId = m.tenantId;
  const topUpId = m.topUpId;
  if (!tenantId || !TENANT.test(tenantId) || !topUpId || !ENTITY.test(topUpId)) {
    return { outcome: 'not_ours', tenantId: '', detail: 'refund of a payment without our metadata' };
  }
  if (status !== 'succeeded') return { outcome: 'ignored', tenantId, detail: `refund is ${String(status)}` };
  // A refund can only follow a successful payment: if the top-up has not succeeded in the ledger yet,
  // the payment_intent.succeeded delivery is still on its way (reordered); ask Stripe to retry.
  return run(
    tenantId,
    () =>
      deps.commands.refundTopUpToCard(ctxFor(tenantId, event, `refund-succeeded:${id}`), {
        topUpId,
        stripeRefundId: id,
        amount,
        currency: currency.toLowerCase(),
      }),
    (e) => e.code === 'invalid_state' && (e.details.status === 'initiated' || e.details.status === 'none'),
  );
}

async function payoutEvent(
  type: 'payout.paid' | 'payout.failed',
  event: Stripe.Event,
  payout: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(payout, 'id');
  const m = meta(payout);
  const tenantId = m.tenantId;
  const payoutId = m.payoutId;
  if (!id || !tenantId || !TENANT.test(tenantId) || !payoutId || !ENTITY.test(payoutId)) {
    return { outcome: 'not_ours', tenantId: '', detail: 'payout without our tenantId/payoutId metadata' };
  }
  if (type === 'payout.paid') {
    return run(tenantId, () =>
      deps.commands.markPayoutPaid(ctxFor(tenantId, event, `po-paid:${id}`), {
        payoutId,
        stripePayoutId: id,
      }),
    );
  }
  const reason = `${str(payout, 'failure_code') ?? 'payout_failed'}: ${str(payout, 'failure_message') ?? ''}`;
  return run(tenantId, () =>
    deps.commands.markPayoutFailed(ctxFor(tenantId, event, `po-failed:${id}`), { payoutId, reason }),
  );
}

async function disputeEvent(
  type: 'charge.dispute.created' | 'charge.dispute.closed',
  event: Stripe.Event,
  dispute: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(dispute, 'id');
  const amount = num(dispute, 'amount');
  const currency = str(dispute, 'currency');
  const paymentIntentId = str(dispute, 'payment_intent');
  if (!id || amount === undefined || !currency)
    return { outcome: 'rejected', tenantId: '', detail: 'malformed dispute' };
  let m = meta(dispute);
  if (!m.tenantId && paymentIntentId && deps.lookup) {
    m = { ...(await deps.lookup.lookupPaymentIntent(paymentIntentId)).metadata, ...m };
  }
  const tenantId = m.tenantId;
  if (!tenantId || !TENANT.test(tenantId))
    return { outcome: 'not_ours', tenantId: '', detail: 'dispute without our tenant' };
  const money = { amount, currency: currency.toLowerCase() };
  if (type === 'charge.dispute.created') {
    return run(tenantId, () =>
      deps.commands.recordStripeCharge(ctxFor(tenantId, event, `dispute-opened:${id}`), {
        kind: 'dispute_opened',
        stripeObjectId: id,
        amount: money,
        description: `Dispute ${id} opened on ${paymentIntentId ?? 'a charge'} (${str(dispute, 'reason') ?? 'unknown reason'})`,
      }),
    );
  }
  const status = str(dispute, 'status');
  if (status !== 'won' && status !== 'lost')
    return { outcome: 'ignored', tenantId, detail: `dispute closed as ${String(status)}` };
  return run(tenantId, () =>
    deps.commands.recordStripeCharge(ctxFor(tenantId, event, `dispute-closed:${id}`), {
      kind: status === 'won' ? 'dispute_won' : 'dispute_lost',
      stripeObjectId: id,
      amount: money,
      description: `Dispute ${id} ${status}`,
    }),
  );
}
