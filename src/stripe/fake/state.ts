import { randomBytes } from 'node:crypto';
import { invariant } from '../../domain/errors.js';
import { BalanceBook, type BalanceTransactionQuery } from './balanceBook.js';
import type { FormObject, FormValue } from './formParser.js';
import {
  type FakeAccount,
  type FakeBalance,
  type FakeBalanceTransaction,
  type FakeCharge,
  type FakeDispute,
  type FakeEvent,
  type FakeObject,
  type FakePaymentIntent,
  type FakePayout,
  type FakeRefund,
  FakeStripeError,
  type FakeTransfer,
  invalidParam,
} from './types.js';

/**
 * The fake's in-memory Stripe: objects, balances, balance transactions and events, with Stripe's
 * parameter validation. Pure state machine (no I/O): the HTTP server (server.ts) parses requests and
 * calls it; every state change emits an event to `onEvent` (the webhook dispatcher).
 */
export interface FakeStripeStateOptions {
  /** Seconds since the epoch; injected so tests control `created`. Must never go backwards. */
  nowSeconds?: () => number;
  /** Cap on stored objects per kind and on balance transactions per account (oldest evicted). */
  maxObjectsPerKind?: number;
  /** Card processing fee: basis points of the amount plus a fixed part (Stripe US: 290 bps + 30). */
  cardFeeBps?: number;
  cardFeeFixed?: number;
  /** Fee Stripe charges for a dispute (Stripe US: 1500). */
  disputeFee?: number;
  /** New connected accounts have payouts enabled (test mode); false: onboarding needed first. */
  accountsStartEnabled?: boolean;
  apiVersion?: string;
  onEvent?: (event: FakeEvent) => void;
}

export const DEFAULT_MAX_OBJECTS_PER_KIND = 200_000;
export const PLATFORM = 'platform';

export const TEST_PAYMENT_METHODS: Record<
  string,
  { outcome: 'succeeded' | 'declined'; declineCode?: string }
> = {
  pm_card_visa: { outcome: 'succeeded' },
  pm_card_mastercard: { outcome: 'succeeded' },
  pm_card_chargeDeclined: { outcome: 'declined', declineCode: 'generic_decline' },
  pm_card_chargeDeclinedInsufficientFunds: { outcome: 'declined', declineCode: 'insufficient_funds' },
};

const CURRENCIES = new Set([
  'usd',
  'eur',
  'gbp',
  'cad',
  'aud',
  'jpy',
  'chf',
  'sek',
  'nok',
  'dkk',
  'pln',
  'vnd',
]);
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function stripeId(prefix: string): string {
  const bytes = randomBytes(24);
  let out = `${prefix}_`;
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

/** A Map that forgets its oldest entries past `max` (insertion order). */
class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(id: string): V | undefined {
    return this.map.get(id);
  }
  set(id: string, value: V): void {
    this.map.set(id, value);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
  }
  get size(): number {
    return this.map.size;
  }
}

export interface RequestContext {
  /** Connected account from the Stripe-Account header, or PLATFORM. */
  account: string;
  requestId: string;
  idempotencyKey: string | null;
}

export class FakeStripeState {
  readonly now: () => number;
  private readonly max: number;
  private readonly cardFeeBps: number;
  private readonly cardFeeFixed: number;
  private readonly disputeFee: number;
  private readonly accountsStartEnabled: boolean;
  readonly apiVersion: string;
  onEvent: (event: FakeEvent) => void;

  readonly paymentIntents: BoundedMap<FakePaymentIntent>;
  readonly charges: BoundedMap<FakeCharge>;
  readonly refunds: BoundedMap<FakeRefund>;
  readonly accounts: BoundedMap<FakeAccount>;
  readonly transfers: BoundedMap<FakeTransfer>;
  readonly payouts: BoundedMap<FakePayout & { account: string }>;
  readonly disputes: BoundedMap<FakeDispute>;
  readonly events: BoundedMap<FakeEvent>;
  private readonly books = new Map<string, BalanceBook>();
  private lastNow = 0;

  constructor(options: FakeStripeStateOptions = {}) {
    const clock = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    // Monotonic: balance transactions are kept in created order.
    this.now = () => {
      this.lastNow = Math.max(this.lastNow, clock());
      return this.lastNow;
    };
    this.max = options.maxObjectsPerKind ?? DEFAULT_MAX_OBJECTS_PER_KIND;
    this.cardFeeBps = options.cardFeeBps ?? 290;
    this.cardFeeFixed = options.cardFeeFixed ?? 30;
    this.disputeFee = options.disputeFee ?? 1500;
    this.accountsStartEnabled = options.accountsStartEnabled ?? true;
    this.apiVersion = options.apiVersion ?? '2026-10-28.endive';
    this.onEvent = options.onEvent ?? (() => {});
    this.paymentIntents = new BoundedMap(this.max);
    this.charges = new BoundedMap(this.max);
    this.refunds = new BoundedMap(this.max);
    this.accounts = new BoundedMap(this.max);
    this.transfers = new BoundedMap(this.max);
    this.payouts = new BoundedMap(this.max);
    this.disputes = new BoundedMap(this.max);
    this.events = new BoundedMap(this.max);
  }

  book(account: string): BalanceBook {
    let b = this.books.get(account);
    if (!b) {
      b = new BalanceBook(this.max);
      this.books.set(account, b);
    }
    return b;
  }

  cardFee(amount: number): number {
    return Math.round((amount * this.cardFeeBps) / 10_000) + this.cardFeeFixed;
  }

  // ----------------------------------------------------------------------------------------------------
  // Payment intents

  createPaymentIntent(params: FormObject, ctx: RequestContext): FakePaymentIntent {
    allowOnly(params, [
      'amount',
      'currency',
      'confirm',
      'payment_method',
      'payment_method_types',
      'metadata',
      'description',
      'capture_method',
      'automatic_payment_methods',
      'expand',
    ]);
    const amount = requireAmount(params, 'amount', 50);
    const currency = requireCurrency(params);
    const metadata = readMetadata(params);
    const confirm = readBoolean(params, 'confirm') ?? false;
    const paymentMethod = optionalString(params, 'payment_method');
    if (paymentMethod !== undefined) requirePaymentMethod(paymentMethod);
    if (confirm && paymentMethod === undefined) {
      throw invalidParam(
        'payment_method',
        'You cannot confirm this PaymentIntent because it is missing a payment method.',
        'payment_intent_unexpected_state',
      );
    }
    const id = stripeId('pi');
    const pi: FakePaymentIntent = {
      id,
      object: 'payment_intent',
      amount,
      amount_received: 0,
      currency,
      status: paymentMethod === undefined ? 'requires_payment_method' : 'requires_confirmation',
      client_secret: `${id}_secret_${stripeId('s').slice(2)}`,
      created: this.now(),
      livemode: false,
      metadata,
      latest_charge: null,
      payment_method: paymentMethod ?? null,
      payment_method_types: readStringList(params, 'payment_method_types') ?? ['card'],
      capture_method: 'automatic',
      confirmation_method: 'automatic',
      description: optionalString(params, 'description') ?? null,
      canceled_at: null,
      last_payment_error: null,
    };
    this.paymentIntents.set(id, pi);
    if (confirm) return this.confirm(pi, paymentMethod as string, ctx);
    return pi;
  }

  confirmPaymentIntent(id: string, params: FormObject, ctx: RequestContext): FakePaymentIntent {
    allowOnly(params, ['payment_method', 'expand', 'return_url']);
    const pi = this.paymentIntents.get(id);
    if (!pi) throw missing(id, 'intent');
    const paymentMethod = optionalString(params, 'payment_method') ?? (pi.payment_method as string | null);
    if (paymentMethod === null || paymentMethod === undefined) {
      throw invalidParam(
        'payment_method',
        'You cannot confirm this PaymentIntent because it is missing a payment method.',
        'payment_intent_unexpected_state',
      );
    }
    requirePaymentMethod(paymentMethod);
    if (pi.status !== 'requires_payment_method' && pi.status !== 'requires_confirmation') {
      throw new FakeStripeError(
        400,
        {
          type: 'invalid_request_error',
          code: 'payment_intent_unexpected_state',
          message: `This PaymentIntent's status is ${pi.status}, so it cannot be confirmed.`,
        },
        false,
      );
    }
    return this.confirm(pi, paymentMethod, ctx);
  }

  retrievePaymentIntent(id: string): FakePaymentIntent {
    const pi = this.paymentIntents.get(id);
    if (!pi) throw missing(id, 'intent');
    return pi;
  }

  private confirm(pi: FakePaymentIntent, paymentMethod: string, ctx: RequestContext): FakePaymentIntent {
    const method = TEST_PAYMENT_METHODS[paymentMethod];
    invariant(method, `unknown payment method ${paymentMethod}`);
    const chargeId = stripeId('ch');
    const created = this.now();
    const charge: FakeCharge = {
      id: chargeId,
      object: 'charge',
      amount: pi.amount,
      amount_captured: 0,
      amount_refunded: 0,
      currency: pi.currency,
      created,
      livemode: false,
      metadata: { ...pi.metadata },
      paid: false,
      captured: false,
      refunded: false,
      status: 'failed',
      balance_transaction: null,
      payment_intent: pi.id,
      payment_method: paymentMethod,
      failure_code: null,
      failure_message: null,
      disputed: false,
      outcome: { type: 'authorized', network_status: 'approved_by_network', reason: null },
    };
    pi.payment_method = paymentMethod;
    pi.latest_charge = chargeId;
    if (method.outcome === 'declined') {
      const message =
        method.declineCode === 'insufficient_funds'
          ? 'Your card has insufficient funds.'
          : 'Your card was declined.';
      charge.failure_code = 'card_declined';
      charge.failure_message = message;
      charge.outcome = {
        type: 'issuer_declined',
        network_status: 'declined_by_network',
        reason: method.declineCode ?? null,
      };
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        type: 'card_error',
        code: 'card_declined',
        decline_code: method.declineCode as string,
        message,
        charge: chargeId,
      };
      this.charges.set(chargeId, charge);
      this.emit('charge.failed', charge, ctx);
      this.emit('payment_intent.payment_failed', pi, ctx);
      // Declines are stored under the idempotency key (Stripe replays them).
      throw new FakeStripeError(
        402,
        {
          type: 'card_error',
          code: 'card_declined',
          decline_code: method.declineCode as string,
          message,
          charge: chargeId,
          payment_intent: clone(pi),
        },
        true,
      );
    }
    const fee = this.cardFee(pi.amount);
    const txn = this.addTxn(PLATFORM, {
      amount: pi.amount,
      currency: pi.currency,
      fee,
      type: 'charge',
      reporting_category: 'charge',
      source: chargeId,
      description: pi.description,
      feeDescription: 'Stripe processing fees',
    });
    charge.paid = true;
    charge.captured = true;
    charge.amount_captured = pi.amount;
    charge.status = 'succeeded';
    charge.balance_transaction = txn.id;
    pi.status = 'succeeded';
    pi.amount_received = pi.amount;
    pi.last_payment_error = null;
    this.charges.set(chargeId, charge);
    this.emit('charge.succeeded', charge, ctx);
    this.emit('payment_intent.succeeded', pi, ctx);
    return pi;
  }

  // ----------------------------------------------------------------------------------------------------
  // Refunds

  createRefund(params: FormObject, ctx: RequestContext): FakeRefund {
    allowOnly(params, ['payment_intent', 'charge', 'amount', 'metadata', 'reason', 'expand']);
    const piId = optionalString(params, 'payment_intent');
    const chargeIdParam = optionalString(params, 'charge');
    if (piId === undefined && chargeIdParam === undefined) {
      throw invalidParam(
        'payment_intent',
        'One of charge or payment_intent is required.',
        'parameter_missing',
      );
    }
    let charge: FakeCharge | undefined;
    if (piId !== undefined) {
      const pi = this.paymentIntents.get(piId);
      if (!pi) throw missing(piId, 'intent', 'payment_intent');
      if (pi.status !== 'succeeded' || typeof pi.latest_charge !== 'string') {
        throw invalidParam(
          'payment_intent',
          `This PaymentIntent (${piId}) does not have a successful charge to refund.`,
          'charge_not_refundable',
        );
      }
      charge = this.charges.get(pi.latest_charge);
    } else {
      charge = this.charges.get(chargeIdParam as string);
      if (!charge) throw missing(chargeIdParam as string, 'charge', 'charge');
    }
    invariant(charge, 'payment intent charge was evicted');
    const remaining = charge.amount_captured - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalidParam(
        'charge',
        `Charge ${charge.id} has already been refunded.`,
        'charge_already_refunded',
      );
    }
    const amount = params.amount === undefined ? remaining : requireAmount(params, 'amount', 1);
    if (amount > remaining) {
      throw invalidParam(
        'amount',
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`,
        'amount_too_large',
      );
    }
    const reason = optionalString(params, 'reason');
    if (reason !== undefined && !['duplicate', 'fraudulent', 'requested_by_customer'].includes(reason)) {
      throw invalidParam(
        'reason',
        `Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer`,
      );
    }
    const id = stripeId('re');
    const txn = this.addTxn(PLATFORM, {
      amount: -amount,
      currency: charge.currency,
      fee: 0,
      type: 'refund',
      reporting_category: 'refund',
      source: id,
      description: 'REFUND FOR CHARGE',
    });
    const refund: FakeRefund = {
      id,
      object: 'refund',
      amount,
      currency: charge.currency,
      created: txn.created,
      metadata: readMetadata(params),
      status: 'succeeded',
      charge: charge.id,
      payment_intent: charge.payment_intent,
      reason: (reason ?? null) as FakeRefund['reason'],
      balance_transaction: txn.id,
    };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount_captured;
    this.refunds.set(id, refund);
    this.emit('refund.created', refund, ctx);
    this.emit('charge.refunded', charge, ctx);
    return refund;
  }

  retrieveRefund(id: string): FakeRefund {
    const r = this.refunds.get(id);
    if (!r) throw missing(id, 'refund');
    return r;
  }

  // ----------------------------------------------------------------------------------------------------
  // Connect accounts, transfers, payouts

  createAccount(params: FormObject, _ctx: RequestContext): FakeAccount {
    allowOnly(params, [
      'type',
      'country',
      'email',
      'metadata',
      'capabilities',
      'business_type',
      'default_currency',
      'expand',
    ]);
    const type = optionalString(params, 'type') ?? 'express';
    if (!['express', 'custom', 'standard'].includes(type)) {
      throw invalidParam('type', `Invalid type: must be one of custom, express, or standard`);
    }
    const id = stripeId('acct');
    const enabled = this.accountsStartEnabled;
    const account: FakeAccount = {
      id,
      object: 'account',
      type: type as FakeAccount['type'],
      country: optionalString(params, 'country') ?? 'US',
      email: optionalString(params, 'email') ?? null,
      created: this.now(),
      metadata: readMetadata(params),
      charges_enabled: enabled,
      payouts_enabled: enabled,
      details_submitted: enabled,
      default_currency: optionalString(params, 'default_currency') ?? 'usd',
    };
    this.accounts.set(id, account);
    return account;
  }

  retrieveAccount(id: string): FakeAccount {
    const a = this.accounts.get(id);
    if (!a) throw missing(id, 'account');
    return a;
  }

  /** Test helper: finish (or undo) onboarding of a connected account. */
  setAccountEnabled(id: string, enabled: boolean): FakeAccount {
    const a = this.retrieveAccount(id);
    a.charges_enabled = enabled;
    a.payouts_enabled = enabled;
    a.details_submitted = enabled;
    this.emit('account.updated', a, { account: id, requestId: stripeId('req'), idempotencyKey: null });
    return a;
  }

  createTransfer(params: FormObject, ctx: RequestContext): FakeTransfer {
    allowOnly(params, [
      'amount',
      'currency',
      'destination',
      'metadata',
      'transfer_group',
      'description',
      'expand',
    ]);
    if (ctx.account !== PLATFORM) {
      throw invalidParam('destination', 'Transfers can only be created by the platform account.');
    }
    const amount = requireAmount(params, 'amount', 1);
    const currency = requireCurrency(params);
    const destination = optionalString(params, 'destination');
    if (destination === undefined)
      throw invalidParam('destination', 'Missing required param: destination.', 'parameter_missing');
    const account = this.accounts.get(destination);
    if (!account) throw missing(destination, 'account', 'destination');
    const available = this.book(PLATFORM).available.get(currency) ?? 0;
    if (available < amount) {
      throw invalidParam(
        'amount',
        'You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges.',
        'balance_insufficient',
      );
    }
    const id = stripeId('tr');
    const txn = this.addTxn(PLATFORM, {
      amount: -amount,
      currency,
      fee: 0,
      type: 'transfer',
      reporting_category: 'transfer',
      source: id,
      description: optionalString(params, 'description') ?? null,
    });
    const paymentId = stripeId('py');
    this.addTxn(destination, {
      amount,
      currency,
      fee: 0,
      type: 'payment',
      reporting_category: 'charge',
      source: paymentId,
      description: null,
    });
    const transfer: FakeTransfer = {
      id,
      object: 'transfer',
      amount,
      amount_reversed: 0,
      currency,
      created: txn.created,
      livemode: false,
      metadata: readMetadata(params),
      destination,
      destination_payment: paymentId,
      reversed: false,
      transfer_group: optionalString(params, 'transfer_group') ?? null,
      balance_transaction: txn.id,
      description: optionalString(params, 'description') ?? null,
    };
    this.transfers.set(id, transfer);
    this.emit('transfer.created', transfer, ctx);
    return transfer;
  }

  retrieveTransfer(id: string): FakeTransfer {
    const t = this.transfers.get(id);
    if (!t) throw missing(id, 'transfer');
    return t;
  }

  createPayout(params: FormObject, ctx: RequestContext): FakePayout {
    allowOnly(params, [
      'amount',
      'currency',
      'metadata',
      'method',
      'description',
      'statement_descriptor',
      'expand',
    ]);
    const amount = requireAmount(params, 'amount', 1);
    const currency = requireCurrency(params);
    const method = optionalString(params, 'method') ?? 'standard';
    if (method !== 'standard' && method !== 'instant')
      throw invalidParam('method', 'Invalid method: must be one of standard or instant');
    if (ctx.account !== PLATFORM) {
      const account = this.accounts.get(ctx.account);
      if (!account) throw missing(ctx.account, 'account');
      if (!account.payouts_enabled) {
        throw invalidParam(
          'amount',
          'Payouts are not enabled for this account yet: onboarding is not complete.',
          'payouts_not_allowed',
        );
      }
    }
    const book = this.book(ctx.account);
    if ((book.available.get(currency) ?? 0) < amount) {
      throw invalidParam(
        'amount',
        'You have insufficient funds in your Stripe account for this transfer.',
        'balance_insufficient',
      );
    }
    const id = stripeId('po');
    const txn = this.addTxn(ctx.account, {
      amount: -amount,
      currency,
      fee: 0,
      type: 'payout',
      reporting_category: 'payout',
      source: id,
      description: 'STRIPE PAYOUT',
    });
    book.assignToPayout(id);
    const payout: FakePayout & { account: string } = {
      id,
      object: 'payout',
      amount,
      currency,
      created: txn.created,
      arrival_date: txn.created + 2 * 86_400,
      livemode: false,
      metadata: readMetadata(params),
      status: 'pending',
      method,
      type: 'bank_account',
      automatic: false,
      failure_code: null,
      failure_message: null,
      balance_transaction: txn.id,
      failure_balance_transaction: null,
      description: optionalString(params, 'description') ?? null,
      account: ctx.account,
    };
    this.payouts.set(id, payout);
    this.emit('payout.created', publicPayout(payout), ctx);
    return publicPayout(payout);
  }

  retrievePayout(id: string, ctx: RequestContext): FakePayout {
    const p = this.payouts.get(id);
    if (!p || p.account !== ctx.account) throw missing(id, 'payout');
    return publicPayout(p);
  }

  /** The bank's answer for a payout: paid, or failed (the money returns to the account's balance). */
  settlePayout(id: string, outcome: 'paid' | 'failed', failureCode = 'account_closed'): FakePayout {
    const p = this.payouts.get(id);
    if (!p) throw missing(id, 'payout');
    if (p.status !== 'pending' && p.status !== 'in_transit') {
      throw invalidParam('payout', `Payout ${id} is already ${p.status}.`, 'payout_unexpected_state');
    }
    const ctx: RequestContext = { account: p.account, requestId: stripeId('req'), idempotencyKey: null };
    if (outcome === 'paid') {
      p.status = 'paid';
      this.emit('payout.paid', publicPayout(p), ctx);
    } else {
      const txn = this.addTxn(p.account, {
        amount: p.amount,
        currency: p.currency,
        fee: 0,
        type: 'payout_failure',
        reporting_category: 'payout_reversal',
        source: p.id,
        description: 'STRIPE PAYOUT FAILURE',
      });
      p.status = 'failed';
      p.failure_code = failureCode;
      p.failure_message = 'The bank account has been closed.';
      p.failure_balance_transaction = txn.id;
      this.emit('payout.failed', publicPayout(p), ctx);
    }
    return publicPayout(p);
  }

  // ----------------------------------------------------------------------------------------------------
  // Disputes (opened by the card network: test helpers, not API endpoints)

  openDispute(input: { paymentIntent?: string; charge?: string; reason?: string }): FakeDispute {
    const chargeId =
      input.charge ??
      (input.paymentIntent
        ? (this.paymentIntents.get(input.paymentIntent)?.latest_charge as string | undefined)
        : undefined);
    const charge = chargeId ? this.charges.get(chargeId) : undefined;
    if (charge?.status !== 'succeeded') throw missing(chargeId ?? '(none)', 'charge', 'charge');
    const id = stripeId('dp');
    const txn = this.addTxn(PLATFORM, {
      amount: -charge.amount,
      currency: charge.currency,
      fee: this.disputeFee,
      type: 'adjustment',
      reporting_category: 'dispute',
      source: id,
      description: `Chargeback withdrawal for ${charge.id}`,
      feeDescription: 'Dispute fee',
    });
    charge.disputed = true;
    const dispute: FakeDispute = {
      id,
      object: 'dispute',
      amount: charge.amount,
      currency: charge.currency,
      created: txn.created,
      livemode: false,
      metadata: { ...charge.metadata },
      status: 'needs_response',
      reason: input.reason ?? 'fraudulent',
      charge: charge.id,
      payment_intent: charge.payment_intent,
      is_charge_refundable: false,
      balance_transactions: [txn.id],
    };
    this.disputes.set(id, dispute);
    this.emit('charge.dispute.created', dispute, {
      account: PLATFORM,
      requestId: stripeId('req'),
      idempotencyKey: null,
    });
    return dispute;
  }

  closeDispute(id: string, outcome: 'won' | 'lost'): FakeDispute {
    const d = this.disputes.get(id);
    if (!d) throw missing(id, 'dispute');
    if (d.status === 'won' || d.status === 'lost')
      throw invalidParam('dispute', `Dispute ${id} is already closed.`);
    if (outcome === 'won') {
      const txn = this.addTxn(PLATFORM, {
        amount: d.amount,
        currency: d.currency,
        // Stripe keeps the dispute fee even when the dispute is won (US accounts).
        fee: 0,
        type: 'adjustment',
        reporting_category: 'dispute_reversal',
        source: id,
        description: `Chargeback reversal for ${d.charge as string}`,
      });
      d.balance_transactions.push(txn.id);
    }
    d.status = outcome;
    this.emit('charge.dispute.closed', d, {
      account: PLATFORM,
      requestId: stripeId('req'),
      idempotencyKey: null,
    });
    return d;
  }

  retrieveDispute(id: string): FakeDispute {
    const d = this.disputes.get(id);
    if (!d) throw missing(id, 'dispute');
    return d;
  }

  // ----------------------------------------------------------------------------------------------------
  // Balance and balance transactions

  balance(account: string): FakeBalance {
    const book = this.book(account);
    return {
      object: 'balance',
      livemode: false,
      available: [...book.available].map(([currency, amount]) => ({
        amount,
        currency,
        source_types: { card: amount },
      })),
      pending: [...book.pending].map(([currency, amount]) => ({
        amount,
        currency,
        source_types: { card: amount },
      })),
    };
  }

  listBalanceTransactions(
    params: FormObject,
    ctx: RequestContext,
  ): { data: FakeBalanceTransaction[]; hasMore: boolean } {
    allowOnly(params, [
      'limit',
      'starting_after',
      'ending_before',
      'created',
      'type',
      'source',
      'payout',
      'currency',
      'expand',
    ]);
    const limitText = optionalString(params, 'limit') ?? '10';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidParam('limit', 'Invalid limit: must be an integer between 1 and 100.');
    }
    const query: BalanceTransactionQuery = { limit };
    const startingAfter = optionalString(params, 'starting_after');
    const endingBefore = optionalString(params, 'ending_before');
    if (startingAfter !== undefined) query.startingAfter = startingAfter;
    if (endingBefore !== undefined) query.endingBefore = endingBefore;
    const type = optionalString(params, 'type');
    if (type !== undefined) query.type = type;
    const source = optionalString(params, 'source');
    if (source !== undefined) query.source = source;
    const payout = optionalString(params, 'payout');
    if (payout !== undefined) query.payout = payout;
    const created = params.created;
    if (created !== undefined) {
      if (typeof created === 'string') {
        const at = toInt(created, 'created');
        query.created = { gte: at, lte: at };
      } else if (!Array.isArray(created)) {
        query.created = {};
        for (const [op, v] of Object.entries(created)) {
          if (op !== 'gt' && op !== 'gte' && op !== 'lt' && op !== 'lte')
            throw invalidParam(
              `created[${op}]`,
              `Received unknown parameter: created[${op}]`,
              'parameter_unknown',
            );
          if (typeof v !== 'string') throw invalidParam(`created[${op}]`, 'Invalid integer');
          query.created[op] = toInt(v, `created[${op}]`);
        }
      } else {
        throw invalidParam('created', 'Invalid created: must be an integer or a hash');
      }
    }
    return this.book(ctx.account).list(query);
  }

  retrieveBalanceTransaction(id: string, ctx: RequestContext): FakeBalanceTransaction {
    const t = this.book(ctx.account).get(id);
    if (!t) throw missing(id, 'balance transaction');
    return t;
  }

  /** Expands `source` as Stripe does with `expand[]=data.source` / `expand[]=source`. */
  expandSource(
    txn: FakeBalanceTransaction,
  ): Omit<FakeBalanceTransaction, 'source'> & { source: FakeObject | string | null } {
    const id = txn.source;
    if (id === null) return txn;
    const found: FakeObject | undefined =
      this.charges.get(id) ??
      this.refunds.get(id) ??
      this.transfers.get(id) ??
      this.disputes.get(id) ??
      (this.payouts.get(id)
        ? publicPayout(this.payouts.get(id) as FakePayout & { account: string })
        : undefined);
    return { ...txn, source: found ?? id };
  }

  retrieveEvent(id: string): FakeEvent {
    const e = this.events.get(id);
    if (!e) throw missing(id, 'event');
    return e;
  }

  /**
   * Bench/soak helper: records a charge that succeeded (PI, charge, balance transaction) without HTTP or
   * events, so a million-transaction history can be seeded in seconds. Same objects as the API path.
   */
  seedSucceededCharge(input: {
    amount: number;
    currency: string;
    metadata: Record<string, string>;
    created?: number;
    /** Explicit ids (bench seeding, so the ledger side can be generated to match). */
    ids?: { paymentIntent: string; charge: string; balanceTransaction: string };
  }): {
    paymentIntent: FakePaymentIntent;
    charge: FakeCharge;
    balanceTransaction: FakeBalanceTransaction;
  } {
    const piId = input.ids?.paymentIntent ?? stripeId('pi');
    const chargeId = input.ids?.charge ?? stripeId('ch');
    const created = input.created ?? this.now();
    const txn = this.addTxn(
      PLATFORM,
      {
        amount: input.amount,
        currency: input.currency,
        fee: this.cardFee(input.amount),
        type: 'charge',
        reporting_category: 'charge',
        source: chargeId,
        description: null,
        feeDescription: 'Stripe processing fees',
      },
      created,
      input.ids?.balanceTransaction,
    );
    const pi: FakePaymentIntent = {
      id: piId,
      object: 'payment_intent',
      amount: input.amount,
      amount_received: input.amount,
      currency: input.currency,
      status: 'succeeded',
      client_secret: null,
      created,
      livemode: false,
      metadata: input.metadata,
      latest_charge: chargeId,
      payment_method: 'pm_card_visa',
      payment_method_types: ['card'],
      capture_method: 'automatic',
      confirmation_method: 'automatic',
      description: null,
      canceled_at: null,
      last_payment_error: null,
    };
    const charge: FakeCharge = {
      id: chargeId,
      object: 'charge',
      amount: input.amount,
      amount_captured: input.amount,
      amount_refunded: 0,
      currency: input.currency,
      created,
      livemode: false,
      metadata: input.metadata,
      paid: true,
      captured: true,
      refunded: false,
      status: 'succeeded',
      balance_transaction: txn.id,
      payment_intent: piId,
      payment_method: 'pm_card_visa',
      failure_code: null,
      failure_message: null,
      disputed: false,
      outcome: { type: 'authorized', network_status: 'approved_by_network', reason: null },
    };
    this.paymentIntents.set(piId, pi);
    this.charges.set(chargeId, charge);
    return { paymentIntent: pi, charge, balanceTransaction: txn };
  }

  private addTxn(
    account: string,
    input: {
      amount: number;
      currency: string;
      fee: number;
      type: FakeBalanceTransaction['type'];
      reporting_category: string;
      source: string | null;
      description: string | null;
      feeDescription?: string;
    },
    createdAt?: number,
    id?: string,
  ): FakeBalanceTransaction {
    const created = createdAt ?? this.now();
    const txn: FakeBalanceTransaction = {
      id: id ?? stripeId('txn'),
      object: 'balance_transaction',
      amount: input.amount,
      available_on: created,
      created,
      currency: input.currency,
      description: input.description,
      fee: input.fee,
      net: input.amount - input.fee,
      reporting_category: input.reporting_category,
      status: 'available',
      type: input.type,
      source: input.source,
      fee_details:
        input.fee === 0
          ? []
          : [
              {
                amount: input.fee,
                currency: input.currency,
                description: input.feeDescription ?? 'Stripe fee',
                type: 'stripe_fee',
              },
            ],
    };
    this.book(account).add(txn);
    return txn;
  }

  private emit(type: string, object: FakeObject, ctx: RequestContext): void {
    const event: FakeEvent = {
      id: stripeId('evt'),
      object: 'event',
      api_version: this.apiVersion,
      created: this.now(),
      livemode: false,
      pending_webhooks: 1,
      type,
      data: { object: clone(object) },
      request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
    };
    if (ctx.account !== PLATFORM) event.account = ctx.account;
    this.events.set(event.id, event);
    this.onEvent(event);
  }
}

function publicPayout(p: FakePayout & { account: string }): FakePayout {
  const { account: _account, ...rest } = p;
  return { ...rest };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function missing(id: string, noun: string, param?: string): FakeStripeError {
  return new FakeStripeError(
    404,
    {
      type: 'invalid_request_error',
      code: 'resource_missing',
      message: `No such ${noun}: '${id}'`,
      ...(param ? { param } : { param: 'id' }),
    },
    false,
  );
}

export function allowOnly(params: FormObject, allowed: string[]): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key))
      throw invalidParam(key, `Received unknown parameter: ${key}`, 'parameter_unknown');
  }
}

function optionalString(params: FormObject, name: string): string | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidParam(name, `Invalid ${name}: must be a string`);
  return v;
}

function toInt(text: string, name: string): number {
  if (!/^-?\d{1,16}$/.test(text)) throw invalidParam(name, `Invalid integer: ${text}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw invalidParam(name, `Invalid integer: ${text}`);
  return n;
}

function requireAmount(params: FormObject, name: string, min: number): number {
  const v = params[name];
  if (v === undefined) throw invalidParam(name, `Missing required param: ${name}.`, 'parameter_missing');
  if (typeof v !== 'string') throw invalidParam(name, `Invalid integer: ${name}`);
  const n = toInt(v, name);
  if (n < min) throw invalidParam(name, `Amount must be at least ${min}`, 'amount_too_small');
  if (n > 99_999_999) throw invalidParam(name, 'Amount must be no more than 99999999', 'amount_too_large');
  return n;
}

function requireCurrency(params: FormObject): string {
  const v = optionalString(params, 'currency');
  if (v === undefined)
    throw invalidParam('currency', 'Missing required param: currency.', 'parameter_missing');
  if (!CURRENCIES.has(v)) throw invalidParam('currency', `Invalid currency: ${v}.`, 'invalid_currency');
  return v;
}

function requirePaymentMethod(id: string): void {
  if (!TEST_PAYMENT_METHODS[id]) {
    throw new FakeStripeError(
      400,
      {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: `No such PaymentMethod: '${id}'`,
        param: 'payment_method',
      },
      false,
    );
  }
}

function readBoolean(params: FormObject, name: string): boolean | undefined {
  const v = optionalString(params, name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalidParam(name, `Invalid boolean: ${v}`);
  return v === 'true';
}

function readStringList(params: FormObject, name: string): string[] | undefined {
  const v = params[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) {
    throw invalidParam(name, `Invalid array: ${name}`);
  }
  return v;
}

/** Stripe's metadata rules: at most 50 keys, keys up to 40 characters, values up to 500. */
export function readMetadata(params: FormObject): Record<string, string> {
  const v: FormValue | undefined = params.metadata;
  if (v === undefined || v === '') return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw invalidParam('metadata', 'Invalid metadata: must be a hash');
  const entries = Object.entries(v);
  if (entries.length > 50) throw invalidParam('metadata', 'Invalid metadata: at most 50 keys');
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw invalidParam(`metadata[${key}]`, 'Metadata values must be strings');
    if (key.length > 40) throw invalidParam(`metadata[${key}]`, 'Metadata keys can be at most 40 characters');
    if (value.length > 500)
      throw invalidParam(`metadata[${key}]`, 'Metadata values can be at most 500 characters');
    out[key] = value;
  }
  return out;
}
