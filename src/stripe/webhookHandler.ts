import type Stripe from 'stripe';
import type { CommandContext } from '../commands/context.js';
import type { LedgerCommands } from '../commands/ledgerCommands.js';
import { DomainError } from '../domain/errors.js';
import { isEntityId, isTenantId } from '../domain/ids.js';
import { type ConnectedAccountSnapshot, GatewayError } from './gateway.js';
import { accountSnapshot } from './stripeGateway.js';

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

/** What the handler may ask Stripe about a connected account (its current state). */
export interface ConnectedAccountLookup {
  retrieveConnectedAccount(id: string): Promise<ConnectedAccountSnapshot>;
}

export interface WebhookHandlerDeps {
  commands: LedgerCommands;
  lookup?: PaymentIntentLookup & Partial<ConnectedAccountLookup>;
}

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

/**
 * The metadata of the PaymentIntent a sparse event (a Dashboard refund or a dispute: empty metadata)
 * names, from Stripe. A PaymentIntent Stripe does not know is no payment of ours: empty metadata, so the
 * event is `not_ours`; any other failure (Stripe unreachable) is thrown, and Stripe redelivers.
 */
async function paymentIntentMetadata(
  lookup: PaymentIntentLookup,
  paymentIntentId: string,
): Promise<Record<string, string>> {
  try {
    return (await lookup.lookupPaymentIntent(paymentIntentId)).metadata;
  } catch (error) {
    if (error instanceof GatewayError && error.stripeCode === 'resource_missing') return {};
    throw error;
  }
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
    case 'refund.failed':
    // The older per-charge name of refund.updated (same Refund object): handled alike, same keys.
    case 'charge.refund.updated':
      return refundEvent(event, object, deps);
    case 'payout.paid':
    case 'payout.failed':
    case 'payout.canceled':
      return payoutEvent(type, event, object, deps);
    case 'charge.dispute.created':
    case 'charge.dispute.funds_withdrawn':
    case 'charge.dispute.funds_reinstated':
    case 'charge.dispute.closed':
      return disputeEvent(type, event, object, deps);
    case 'account.updated':
      return accountEvent(event, object, deps);
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
  if (!id || !tenantId || !isTenantId(tenantId) || !topUpId || !isEntityId(topUpId)) {
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
    m = { ...(await paymentIntentMetadata(deps.lookup, paymentIntentId)), ...m };
  }
  const tenantId = m.tenantId;
  const topUpId = m.topUpId;
  if (!tenantId || !isTenantId(tenantId) || !topUpId || !isEntityId(topUpId)) {
    return { outcome: 'not_ours', tenantId: '', detail: 'refund of a payment without our metadata' };
  }
  if (status === 'failed') {
    // The card could not take the money back and Stripe returned it to the balance: the wallet gets it
    // back (docs/ledger-flows.md, "Card refund failed"). refund.updated and refund.failed of one failure
    // share the key, so either order and every repeat reverses it once; a failure arriving before the
    // refund books the refund first (LedgerService.reverseFailedCardRefund).
    return run(
      tenantId,
      () =>
        deps.commands.reverseFailedCardRefund(ctxFor(tenantId, event, `refund-failed:${id}`), {
          topUpId,
          stripeRefundId: id,
          amount,
          currency: currency.toLowerCase(),
          failureReason: str(refund, 'failure_reason') ?? 'unknown',
        }),
      (e) => e.code === 'invalid_state' && (e.details.status === 'initiated' || e.details.status === 'none'),
    );
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
  type: 'payout.paid' | 'payout.failed' | 'payout.canceled',
  event: Stripe.Event,
  payout: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(payout, 'id');
  const m = meta(payout);
  const tenantId = m.tenantId;
  const payoutId = m.payoutId;
  if (!id || !tenantId || !isTenantId(tenantId) || !payoutId || !isEntityId(payoutId)) {
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
  if (type === 'payout.canceled') {
    // Canceled while pending: the money stays on the tutor's Stripe account and the hold is released.
    return run(tenantId, () =>
      deps.commands.markPayoutFailed(ctxFor(tenantId, event, `po-canceled:${id}`), {
        payoutId,
        reason: 'canceled: the payout was canceled at Stripe',
      }),
    );
  }
  // A failure may come after payout.paid (Stripe: "some failed payouts may initially show as paid"):
  // with Stripe's failure code the ledger reverses the paid payout (docs/ledger-flows.md).
  const failureCode = str(payout, 'failure_code') ?? 'payout_failed';
  const reason = `${failureCode}: ${str(payout, 'failure_message') ?? ''}`;
  return run(tenantId, () =>
    deps.commands.markPayoutFailed(ctxFor(tenantId, event, `po-failed:${id}`), {
      payoutId,
      reason,
      failureCode,
    }),
  );
}

/**
 * Disputes book what Stripe moves (docs/ledger-flows.md, "Disputes"): the funds withdrawn (Dr
 * platform:expense:disputes, Cr stripe:balance) when a chargeback is opened (`created` of a chargeback,
 * or `funds_withdrawn`, which also follows an inquiry that escalated), and their return when it is won
 * (`funds_reinstated`, or `closed` as won). An inquiry (status `warning_*`) moves no money and books
 * nothing, nor does its closing (`warning_closed`). Both ways to a fact share one key, so either order
 * and every repeat books it once; a reinstatement or closing before the withdrawal asks Stripe to retry.
 */
async function disputeEvent(
  type:
    | 'charge.dispute.created'
    | 'charge.dispute.funds_withdrawn'
    | 'charge.dispute.funds_reinstated'
    | 'charge.dispute.closed',
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
    m = { ...(await paymentIntentMetadata(deps.lookup, paymentIntentId)), ...m };
  }
  const tenantId = m.tenantId;
  if (!tenantId || !isTenantId(tenantId))
    return { outcome: 'not_ours', tenantId: '', detail: 'dispute without our tenant' };
  const money = { amount, currency: currency.toLowerCase() };
  const status = str(dispute, 'status') ?? '';
  const inquiry = status.startsWith('warning_');
  if ((type === 'charge.dispute.created' && inquiry) || (type === 'charge.dispute.closed' && inquiry)) {
    return { outcome: 'ignored', tenantId, detail: `inquiry ${id} (${status}): no funds moved` };
  }
  if (type === 'charge.dispute.created' || type === 'charge.dispute.funds_withdrawn') {
    return run(tenantId, () =>
      deps.commands.recordStripeCharge(ctxFor(tenantId, event, `dispute-opened:${id}`), {
        kind: 'dispute_opened',
        stripeObjectId: id,
        amount: money,
        description: `Dispute ${id} opened on ${paymentIntentId ?? 'a charge'} (${str(dispute, 'reason') ?? 'unknown reason'})`,
      }),
    );
  }
  const outcome = type === 'charge.dispute.funds_reinstated' ? 'won' : status;
  if (outcome !== 'won' && outcome !== 'lost')
    return { outcome: 'ignored', tenantId, detail: `dispute closed as ${String(status)}` };
  return run(tenantId, () =>
    deps.commands.recordStripeCharge(ctxFor(tenantId, event, `dispute-closed:${id}`), {
      kind: outcome === 'won' ? 'dispute_won' : 'dispute_lost',
      stripeObjectId: id,
      amount: money,
      description: `Dispute ${id} ${outcome}`,
    }),
  );
}

/**
 * A tutor's Express account changed (onboarding finished, requirements came due, payouts disabled).
 * The account is the tutor's when the tutor stream recorded its id (the metadata we set at creation
 * only says which stream to look in; syncPayoutAccount refuses an account the stream does not hold).
 * What is recorded is the account as Stripe describes it now (asked when a lookup is wired), not the
 * event's copy: account.updated carries no version, so a late delivery must not roll the state back.
 */
async function accountEvent(
  event: Stripe.Event,
  account: Obj,
  deps: WebhookHandlerDeps,
): Promise<WebhookResult> {
  const id = str(account, 'id');
  const m = meta(account);
  const tenantId = m.tenantId;
  const tutorId = m.tutorId;
  if (!id || !tenantId || !isTenantId(tenantId) || !tutorId || !isEntityId(tutorId)) {
    return { outcome: 'not_ours', tenantId: '', detail: 'account without our tenantId/tutorId metadata' };
  }
  const snapshot = deps.lookup?.retrieveConnectedAccount
    ? await deps.lookup.retrieveConnectedAccount(id)
    : accountSnapshot(account as unknown as Stripe.Account);
  // Keyed by the event: a redelivery is the same fact; a later event is a new one (even if the account
  // went back to an earlier state).
  return run(tenantId, () =>
    deps.commands.syncPayoutAccount(ctxFor(tenantId, event, `account-updated:${event.id}`), {
      tutorId,
      account: snapshot,
    }),
  );
}
