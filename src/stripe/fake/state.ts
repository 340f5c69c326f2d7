import { randomBytes } from 'node:crypto';
import { invariant } from '../../domain/errors.js';
import { ACCEPTED_PARAMS } from './accepted.js';
import { BalanceBook, type BalanceTransactionQuery } from './balanceBook.js';
import type { FormObject } from './formParser.js';
import * as build from './objects.js';
import {
  allowOnly,
  invalidParam,
  missing,
  oneOf,
  optionalString,
  readBoolean,
  readHash,
  readMetadata,
  readStringList,
  refused,
  requireAmount,
  requireCurrency,
  requireString,
  toInt,
} from './params.js';
import {
  type FakeAccount,
  type FakeAccountLink,
  type FakeBalance,
  type FakeBalanceTransaction,
  type FakeCharge,
  type FakeCustomer,
  type FakeDispute,
  type FakeEvent,
  type FakeObject,
  type FakePaymentIntent,
  type FakePaymentMethod,
  type FakePayout,
  type FakeRefund,
  type FakeSetupIntent,
  FakeStripeError,
  type FakeTransfer,
} from './types.js';

/**
 * The fake's in-memory Stripe: objects, balances, balance transactions and events, with Stripe's
 * parameter validation and state rules for the API version the SDK pins. Pure state machine (no I/O):
 * the HTTP server (server.ts) parses requests and calls it; every state change emits an event to
 * `onEvent` (the webhook dispatcher). Time is the fake's own clock (`nowSeconds` plus `advanceTime`),
 * so tests can let card funds become available or idempotency keys expire.
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
  /**
   * How long card funds stay pending before they are available (Stripe: days, by country and
   * account). Default two days on the fake's clock; `pm_card_bypassPending` (4000 0000 0000 0077) is
   * available at once, as on Stripe.
   */
  availableAfterSeconds?: number;
  /**
   * New connected accounts can take transfers and payouts at once. Default false, as on Stripe:
   * an account starts restricted with requirements and is enabled by visiting its onboarding link.
   */
  accountsStartEnabled?: boolean;
  apiVersion?: string;
  onEvent?: (event: FakeEvent) => void;
}

export const DEFAULT_MAX_OBJECTS_PER_KIND = 200_000;
export const DEFAULT_AVAILABLE_AFTER_SECONDS = 2 * 86_400;
export const PLATFORM = 'platform';
const DAY = 86_400;

type CardOutcome = 'succeeded' | 'declined' | 'authentication_required';

interface TestMethod {
  outcome: CardOutcome;
  declineCode?: string;
  card: build.TestCard;
  /** Funds skip the pending balance (Stripe's 4000 0000 0000 0077). */
  bypassPending?: boolean;
}

const VISA: build.TestCard = { brand: 'visa', last4: '4242', funding: 'credit', country: 'US' };

/** Stripe's test PaymentMethod tokens the fake knows (https://docs.stripe.com/testing). */
export const TEST_PAYMENT_METHODS: Record<string, TestMethod> = {
  pm_card_visa: { outcome: 'succeeded', card: VISA },
  pm_card_mastercard: {
    outcome: 'succeeded',
    card: { brand: 'mastercard', last4: '4444', funding: 'credit', country: 'US' },
  },
  pm_card_bypassPending: {
    outcome: 'succeeded',
    bypassPending: true,
    card: { ...VISA, last4: '0077' },
  },
  pm_card_chargeDeclined: {
    outcome: 'declined',
    declineCode: 'generic_decline',
    card: { ...VISA, last4: '0002' },
  },
  pm_card_chargeDeclinedInsufficientFunds: {
    outcome: 'declined',
    declineCode: 'insufficient_funds',
    card: { ...VISA, last4: '9995' },
  },
  pm_card_authenticationRequired: {
    outcome: 'authentication_required',
    card: { ...VISA, last4: '3184' },
  },
};

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function stripeId(prefix: string): string {
  const bytes = randomBytes(24);
  let out = `${prefix}_`;
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

/** A Map that forgets its oldest entries past `max` (insertion order). */
export class BoundedMap<V> {
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
  values(): IterableIterator<V> {
    return this.map.values();
  }
  get size(): number {
    return this.map.size;
  }
}

export interface RequestContext {
  /** Connected account from the Stripe-Account header, or PLATFORM. */
  account: string;
  requestId: string | null;
  idempotencyKey: string | null;
}

/** Changes Stripe makes on its own (the bank, the card network, a Dashboard user): no API request. */
function systemContext(account: string): RequestContext {
  return { account, requestId: null, idempotencyKey: null };
}

interface PayoutRecord {
  payout: FakePayout;
  account: string;
}

interface LinkRecord {
  link: FakeAccountLink;
  account: string;
  refreshUrl: string;
  returnUrl: string;
  used: boolean;
}

/** A saved (attached) PaymentMethod remembers which test card it came from. */
interface MethodRecord {
  method: FakePaymentMethod;
  behaviour: TestMethod;
}

export class FakeStripeState {
  private readonly clock: () => number;
  private offsetSeconds = 0;
  private lastNow = 0;
  private readonly max: number;
  private readonly cardFeeBps: number;
  private readonly cardFeeFixed: number;
  private readonly disputeFee: number;
  private readonly availableAfterSeconds: number;
  private readonly accountsStartEnabled: boolean;
  readonly apiVersion: string;
  onEvent: (event: FakeEvent) => void;
  /** Where account links point (the server's `/_fake/onboarding`); set when the server starts. */
  onboardingBaseUrl = 'http://127.0.0.1/_fake/onboarding';

  readonly paymentIntents: BoundedMap<FakePaymentIntent>;
  readonly charges: BoundedMap<FakeCharge>;
  readonly refunds: BoundedMap<FakeRefund>;
  readonly accounts: BoundedMap<FakeAccount>;
  readonly accountLinks: BoundedMap<LinkRecord>;
  readonly transfers: BoundedMap<FakeTransfer>;
  readonly payouts: BoundedMap<PayoutRecord>;
  readonly disputes: BoundedMap<FakeDispute>;
  readonly customers: BoundedMap<FakeCustomer>;
  readonly paymentMethods: BoundedMap<MethodRecord>;
  readonly setupIntents: BoundedMap<FakeSetupIntent>;
  readonly events: BoundedMap<FakeEvent>;
  /** Amount already transferred out of each charge (`source_transaction`). */
  private readonly transferredFrom = new Map<string, number>();
  private readonly books = new Map<string, BalanceBook>();

  constructor(options: FakeStripeStateOptions = {}) {
    this.clock = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.max = options.maxObjectsPerKind ?? DEFAULT_MAX_OBJECTS_PER_KIND;
    this.cardFeeBps = options.cardFeeBps ?? 290;
    this.cardFeeFixed = options.cardFeeFixed ?? 30;
    this.disputeFee = options.disputeFee ?? 1500;
    this.availableAfterSeconds = options.availableAfterSeconds ?? DEFAULT_AVAILABLE_AFTER_SECONDS;
    invariant(
      Number.isSafeInteger(this.availableAfterSeconds) && this.availableAfterSeconds >= 0,
      'availableAfterSeconds must be a non-negative integer',
    );
    this.accountsStartEnabled = options.accountsStartEnabled ?? false;
    this.apiVersion = options.apiVersion ?? '2026-10-28.endive';
    this.onEvent = options.onEvent ?? (() => {});
    this.paymentIntents = new BoundedMap(this.max);
    this.charges = new BoundedMap(this.max);
    this.refunds = new BoundedMap(this.max);
    this.accounts = new BoundedMap(this.max);
    this.accountLinks = new BoundedMap(this.max);
    this.transfers = new BoundedMap(this.max);
    this.payouts = new BoundedMap(this.max);
    this.disputes = new BoundedMap(this.max);
    this.customers = new BoundedMap(this.max);
    this.paymentMethods = new BoundedMap(this.max);
    this.setupIntents = new BoundedMap(this.max);
    this.events = new BoundedMap(this.max);
  }

  /** The fake's clock in seconds: monotonic (balance transactions are kept in created order). */
  now(): number {
    this.lastNow = Math.max(this.lastNow, this.clock() + this.offsetSeconds);
    return this.lastNow;
  }

  /** Moves the fake's clock forward (funds mature, idempotency keys and account links expire). */
  advanceTime(seconds: number): void {
    invariant(Number.isSafeInteger(seconds) && seconds >= 0, 'advanceTime takes whole seconds >= 0');
    this.offsetSeconds += seconds;
  }

  book(account: string): BalanceBook {
    let b = this.books.get(account);
    if (!b) {
      b = new BalanceBook(this.max, () => this.now());
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
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/payment_intents']);
    const amount = requireAmount(params, 'amount', 50);
    const currency = requireCurrency(params);
    const metadata = readMetadata(params);
    const confirm = readBoolean(params, 'confirm') ?? false;
    const offSession = readBoolean(params, 'off_session');
    const paymentMethod = optionalString(params, 'payment_method');
    const customer = optionalString(params, 'customer');
    if (customer !== undefined && !this.customers.get(customer))
      throw missing(customer, 'customer', 'customer');
    if (paymentMethod !== undefined) this.requirePaymentMethod(paymentMethod, customer ?? null);
    // This API version chooses payment methods with `allowed_payment_method_types` (the older
    // `payment_method_types` parameter is gone); the object still lists `payment_method_types`.
    const types = readStringList(params, 'allowed_payment_method_types');
    const automatic = readHash(params, 'automatic_payment_methods', ['enabled', 'allow_redirects']);
    if (types !== undefined && automatic !== undefined) {
      throw invalidParam(
        'automatic_payment_methods',
        'You may only specify one of these parameters: automatic_payment_methods, allowed_payment_method_types.',
      );
    }
    if (types !== undefined && !types.every((t) => t === 'card')) {
      throw invalidParam(
        'allowed_payment_method_types',
        'The fake accepts only the payment method type card.',
      );
    }
    const automaticEnabled = automatic === undefined ? types === undefined : automatic.enabled === 'true';
    const allowRedirects =
      automatic?.allow_redirects === undefined ? 'always' : String(automatic.allow_redirects);
    if (allowRedirects !== 'always' && allowRedirects !== 'never') {
      throw invalidParam(
        'automatic_payment_methods[allow_redirects]',
        'Invalid automatic_payment_methods[allow_redirects]: must be one of always or never',
      );
    }
    if (offSession !== undefined && !confirm) {
      throw invalidParam('off_session', 'off_session can only be used when confirm=true.');
    }
    const setupFutureUsage = oneOf(params, 'setup_future_usage', ['off_session', 'on_session'] as const);
    if (setupFutureUsage !== undefined && customer === undefined) {
      throw invalidParam(
        'setup_future_usage',
        'You must provide a customer when setting setup_future_usage, so the payment method can be attached to it.',
      );
    }
    const captureMethod = oneOf(params, 'capture_method', [
      'automatic',
      'automatic_async',
      'manual',
    ] as const);
    const id = stripeId('pi');
    const pi = build.paymentIntent({
      id,
      amount,
      currency,
      created: this.now(),
      clientSecret: `${id}_secret_${stripeId('s').slice(2)}`,
      metadata,
      description: optionalString(params, 'description') ?? null,
      customer: customer ?? null,
      paymentMethod: paymentMethod ?? null,
      paymentMethodTypes: types ?? ['card'],
      automaticPaymentMethods: automaticEnabled,
      captureMethod: captureMethod ?? 'automatic_async',
      setupFutureUsage: setupFutureUsage ?? null,
      receiptEmail: optionalString(params, 'receipt_email') ?? null,
      statementDescriptor: optionalString(params, 'statement_descriptor') ?? null,
      statementDescriptorSuffix: optionalString(params, 'statement_descriptor_suffix') ?? null,
      transferGroup: optionalString(params, 'transfer_group') ?? null,
    });
    if (pi.automatic_payment_methods) pi.automatic_payment_methods.allow_redirects = allowRedirects;
    if (types !== undefined) pi.allowed_payment_method_types = ['card'];
    this.paymentIntents.set(id, pi);
    this.emit('payment_intent.created', pi, ctx);
    if (!confirm) return pi;
    if (paymentMethod === undefined) {
      throw refused(
        'payment_intent_unexpected_state',
        'You cannot confirm this PaymentIntent because it is missing a payment method.',
        'payment_method',
      );
    }
    this.requireReturnUrl(pi, optionalString(params, 'return_url'));
    return this.confirm(pi, paymentMethod, ctx, offSession === true);
  }

  confirmPaymentIntent(id: string, params: FormObject, ctx: RequestContext): FakePaymentIntent {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/payment_intents/{id}/confirm']);
    const pi = this.paymentIntents.get(id);
    if (!pi) throw missing(id, 'payment_intent');
    const paymentMethod = optionalString(params, 'payment_method') ?? (pi.payment_method as string | null);
    if (paymentMethod === null || paymentMethod === undefined) {
      throw refused(
        'payment_intent_unexpected_state',
        'You cannot confirm this PaymentIntent because it is missing a payment method.',
        'payment_method',
      );
    }
    this.requirePaymentMethod(paymentMethod, typeof pi.customer === 'string' ? pi.customer : null);
    if (pi.status !== 'requires_payment_method' && pi.status !== 'requires_confirmation') {
      throw refused(
        'payment_intent_unexpected_state',
        `This PaymentIntent's status is ${pi.status}, so it cannot be confirmed.`,
      );
    }
    this.requireReturnUrl(pi, optionalString(params, 'return_url'));
    return this.confirm(pi, paymentMethod, ctx, readBoolean(params, 'off_session') === true);
  }

  retrievePaymentIntent(id: string): FakePaymentIntent {
    const pi = this.paymentIntents.get(id);
    if (!pi) throw missing(id, 'payment_intent');
    return pi;
  }

  /**
   * Stripe refuses to confirm with redirect-capable automatic payment methods and no `return_url`
   * (callers that never redirect send `automatic_payment_methods[allow_redirects]=never`).
   */
  private requireReturnUrl(pi: FakePaymentIntent, returnUrl: string | undefined): void {
    if (pi.automatic_payment_methods?.enabled && pi.automatic_payment_methods.allow_redirects !== 'never') {
      if (returnUrl === undefined) {
        throw invalidParam(
          'return_url',
          "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
          'parameter_missing',
        );
      }
    }
  }

  /** A test token (pm_card_visa) or a saved PaymentMethod; saved ones must belong to `customer`. */
  private requirePaymentMethod(id: string, customer: string | null): TestMethod {
    const token = TEST_PAYMENT_METHODS[id];
    if (token) return token;
    const saved = this.paymentMethods.get(id);
    if (!saved) throw missing(id, 'PaymentMethod', 'payment_method');
    if (saved.method.customer !== null && saved.method.customer !== customer) {
      throw invalidParam(
        'payment_method',
        `The provided PaymentMethod ${id} belongs to a Customer; pass that Customer to use it.`,
      );
    }
    return saved.behaviour;
  }

  private confirm(
    pi: FakePaymentIntent,
    paymentMethod: string,
    ctx: RequestContext,
    offSession: boolean,
  ): FakePaymentIntent {
    const method = this.requirePaymentMethod(
      paymentMethod,
      typeof pi.customer === 'string' ? pi.customer : null,
    );
    const chargeId = stripeId('ch');
    const created = this.now();
    const charge = build.charge({ id: chargeId, pi, paymentMethod, card: method.card, created });
    pi.payment_method = paymentMethod;
    if (method.outcome === 'authentication_required' && !offSession) {
      // On session the customer would authenticate (3D Secure): the intent waits for it.
      pi.status = 'requires_action';
      pi.next_action = {
        type: 'use_stripe_sdk',
        use_stripe_sdk: {
          type: 'three_d_secure_redirect',
          stripe_js: `https://hooks.stripe.com/3ds/${pi.id}`,
        },
      };
      this.emit('payment_intent.requires_action', pi, ctx);
      return pi;
    }
    pi.latest_charge = chargeId;
    if (method.outcome !== 'succeeded') {
      const declineCode =
        method.outcome === 'authentication_required'
          ? 'authentication_required'
          : (method.declineCode as string);
      const code = method.outcome === 'authentication_required' ? 'authentication_required' : 'card_declined';
      const message =
        method.outcome === 'authentication_required'
          ? 'Your card was declined. This transaction requires authentication.'
          : declineCode === 'insufficient_funds'
            ? 'Your card has insufficient funds.'
            : 'Your card was declined.';
      charge.status = 'failed';
      charge.failure_code = code;
      charge.failure_message = message;
      charge.outcome = {
        ...charge.outcome,
        network_status: 'declined_by_network',
        reason: declineCode,
        seller_message: 'The bank did not return any further details with this decline.',
        type: 'issuer_declined',
      } as FakeCharge['outcome'];
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        type: 'card_error',
        code,
        decline_code: declineCode,
        doc_url: `https://docs.stripe.com/error-codes/${code.replaceAll('_', '-')}`,
        message,
        charge: chargeId,
        payment_method: this.paymentMethodObject(paymentMethod, method),
      };
      this.charges.set(chargeId, charge);
      this.emit('charge.failed', charge, ctx);
      this.emit('payment_intent.payment_failed', pi, ctx);
      // Declines are stored under the idempotency key (Stripe replays them).
      throw new FakeStripeError(
        402,
        {
          type: 'card_error',
          code,
          decline_code: declineCode,
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
      reportingCategory: 'charge',
      source: chargeId,
      description: pi.description,
      feeDescription: 'Stripe processing fees',
      availableAfterSeconds: method.bypassPending ? 0 : this.availableAfterSeconds,
    });
    charge.paid = true;
    charge.captured = true;
    charge.amount_captured = pi.amount;
    charge.status = 'succeeded';
    charge.balance_transaction = txn.id;
    charge.receipt_url = `https://pay.stripe.com/receipts/payment/${chargeId}`;
    pi.status = 'succeeded';
    pi.amount_received = pi.amount;
    pi.last_payment_error = null;
    pi.next_action = null;
    this.charges.set(chargeId, charge);
    if (
      pi.setup_future_usage !== null &&
      typeof pi.customer === 'string' &&
      TEST_PAYMENT_METHODS[paymentMethod]
    ) {
      // A payment that saves its method attaches a new PaymentMethod (from the test token) to the customer.
      pi.payment_method = this.attach(paymentMethod, pi.customer, ctx).id;
      charge.payment_method = pi.payment_method;
    }
    this.emit('charge.succeeded', charge, ctx);
    this.emit('payment_intent.succeeded', pi, ctx);
    return pi;
  }

  // ----------------------------------------------------------------------------------------------------
  // Customers, payment methods, setup intents (saving a card for later off-session payments)

  createCustomer(params: FormObject, ctx: RequestContext): FakeCustomer {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/customers']);
    const c = build.customer({
      id: stripeId('cus'),
      created: this.now(),
      email: optionalString(params, 'email') ?? null,
      name: optionalString(params, 'name') ?? null,
      description: optionalString(params, 'description') ?? null,
      metadata: readMetadata(params),
    });
    this.customers.set(c.id, c);
    const pm = optionalString(params, 'payment_method');
    if (pm !== undefined) {
      this.requirePaymentMethod(pm, null);
      this.attach(pm, c.id, ctx);
    }
    this.emit('customer.created', c, ctx);
    return c;
  }

  retrieveCustomer(id: string): FakeCustomer {
    const c = this.customers.get(id);
    if (!c) throw missing(id, 'customer');
    return c;
  }

  retrievePaymentMethod(id: string): FakePaymentMethod {
    const token = TEST_PAYMENT_METHODS[id];
    if (token) return this.paymentMethodObject(id, token);
    const saved = this.paymentMethods.get(id);
    if (!saved) throw missing(id, 'PaymentMethod');
    return saved.method;
  }

  attachPaymentMethod(id: string, params: FormObject, ctx: RequestContext): FakePaymentMethod {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/payment_methods/{id}/attach']);
    const customer = requireString(params, 'customer');
    if (!this.customers.get(customer)) throw missing(customer, 'customer', 'customer');
    const saved = this.paymentMethods.get(id);
    if (saved) {
      if (saved.method.customer !== null && saved.method.customer !== customer) {
        throw refused(
          'payment_method_unexpected_state',
          'This PaymentMethod was previously used without being attached to a Customer or was detached from a Customer, and may not be used again.',
        );
      }
      saved.method.customer = customer;
      return saved.method;
    }
    if (!TEST_PAYMENT_METHODS[id]) throw missing(id, 'PaymentMethod');
    return this.attach(id, customer, ctx);
  }

  /** A test token attached to a customer becomes a new, saved PaymentMethod (as on Stripe). */
  private attach(token: string, customer: string, ctx: RequestContext): FakePaymentMethod {
    const behaviour = TEST_PAYMENT_METHODS[token];
    invariant(behaviour, `unknown test payment method ${token}`);
    const method = build.paymentMethod({
      id: stripeId('pm'),
      created: this.now(),
      card: behaviour.card,
      customer,
      metadata: {},
    });
    this.paymentMethods.set(method.id, { method, behaviour });
    this.emit('payment_method.attached', method, ctx);
    return method;
  }

  private paymentMethodObject(id: string, method: TestMethod): FakePaymentMethod {
    const saved = this.paymentMethods.get(id);
    if (saved) return saved.method;
    return build.paymentMethod({ id, created: this.now(), card: method.card, customer: null, metadata: {} });
  }

  createSetupIntent(params: FormObject, ctx: RequestContext): FakeSetupIntent {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/setup_intents']);
    const customer = optionalString(params, 'customer');
    if (customer !== undefined && !this.customers.get(customer))
      throw missing(customer, 'customer', 'customer');
    const paymentMethod = optionalString(params, 'payment_method');
    if (paymentMethod !== undefined) this.requirePaymentMethod(paymentMethod, customer ?? null);
    const types = readStringList(params, 'allowed_payment_method_types');
    const automatic = readHash(params, 'automatic_payment_methods', ['enabled', 'allow_redirects']);
    if (types !== undefined && automatic !== undefined) {
      throw invalidParam(
        'automatic_payment_methods',
        'You may only specify one of these parameters: automatic_payment_methods, allowed_payment_method_types.',
      );
    }
    const usage = oneOf(params, 'usage', ['off_session', 'on_session'] as const) ?? 'off_session';
    const id = stripeId('seti');
    const si = build.setupIntent({
      id,
      created: this.now(),
      clientSecret: `${id}_secret_${stripeId('s').slice(2)}`,
      customer: customer ?? null,
      paymentMethod: paymentMethod ?? null,
      paymentMethodTypes: types ?? ['card'],
      automaticPaymentMethods: automatic === undefined ? types === undefined : automatic.enabled === 'true',
      usage,
      description: optionalString(params, 'description') ?? null,
      metadata: readMetadata(params),
    });
    if (si.automatic_payment_methods && automatic?.allow_redirects !== undefined) {
      si.automatic_payment_methods.allow_redirects =
        automatic.allow_redirects === 'never' ? 'never' : 'always';
    }
    if (types !== undefined) si.allowed_payment_method_types = ['card'];
    this.setupIntents.set(id, si);
    this.emit('setup_intent.created', si, ctx);
    if (readBoolean(params, 'confirm') !== true) return si;
    return this.confirmSetup(si, paymentMethod, optionalString(params, 'return_url'), ctx);
  }

  confirmSetupIntent(id: string, params: FormObject, ctx: RequestContext): FakeSetupIntent {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/setup_intents/{id}/confirm']);
    const si = this.setupIntents.get(id);
    if (!si) throw missing(id, 'setup_intent');
    if (si.status !== 'requires_payment_method' && si.status !== 'requires_confirmation') {
      throw refused(
        'setup_intent_unexpected_state',
        `This SetupIntent's status is ${si.status}, so it cannot be confirmed.`,
      );
    }
    return this.confirmSetup(
      si,
      optionalString(params, 'payment_method') ?? (si.payment_method as string | null) ?? undefined,
      optionalString(params, 'return_url'),
      ctx,
    );
  }

  retrieveSetupIntent(id: string): FakeSetupIntent {
    const si = this.setupIntents.get(id);
    if (!si) throw missing(id, 'setup_intent');
    return si;
  }

  private confirmSetup(
    si: FakeSetupIntent,
    paymentMethod: string | undefined,
    returnUrl: string | undefined,
    ctx: RequestContext,
  ): FakeSetupIntent {
    if (paymentMethod === undefined) {
      throw refused(
        'setup_intent_unexpected_state',
        'You cannot confirm this SetupIntent because it is missing a payment method.',
        'payment_method',
      );
    }
    if (
      si.automatic_payment_methods?.enabled &&
      si.automatic_payment_methods.allow_redirects !== 'never' &&
      returnUrl === undefined
    ) {
      throw invalidParam(
        'return_url',
        'This SetupIntent is configured to accept payment methods enabled in your Dashboard, some of which may redirect: you must provide a `return_url`, or set `automatic_payment_methods[allow_redirects]` to `never`.',
        'parameter_missing',
      );
    }
    const customer = typeof si.customer === 'string' ? si.customer : null;
    const method = this.requirePaymentMethod(paymentMethod, customer);
    if (method.outcome === 'declined') {
      const message = 'Your card was declined.';
      si.status = 'requires_payment_method';
      si.last_setup_error = {
        type: 'card_error',
        code: 'card_declined',
        decline_code: method.declineCode as string,
        doc_url: 'https://docs.stripe.com/error-codes/card-declined',
        message,
      };
      this.emit('setup_intent.setup_failed', si, ctx);
      throw new FakeStripeError(
        402,
        {
          type: 'card_error',
          code: 'card_declined',
          decline_code: method.declineCode as string,
          message,
          setup_intent: clone(si),
        },
        true,
      );
    }
    // Saving a card authenticates it once (on session), so later off-session payments need no 3DS
    // except with the test card that always requires it.
    si.payment_method =
      customer !== null && TEST_PAYMENT_METHODS[paymentMethod]
        ? this.attach(paymentMethod, customer, ctx).id
        : paymentMethod;
    si.status = 'succeeded';
    si.last_setup_error = null;
    si.latest_attempt = stripeId('setatt');
    this.emit('setup_intent.succeeded', si, ctx);
    return si;
  }

  // ----------------------------------------------------------------------------------------------------
  // Refunds

  createRefund(params: FormObject, ctx: RequestContext): FakeRefund {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/refunds']);
    const charge = this.refundableCharge(
      optionalString(params, 'payment_intent'),
      optionalString(params, 'charge'),
    );
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
        `Refund amount ($${(amount / 100).toFixed(2)}) is greater than unrefunded amount on charge ($${(remaining / 100).toFixed(2)})`,
        'amount_too_large',
      );
    }
    const reason = oneOf(params, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer'] as const);
    return this.refund(charge, amount, readMetadata(params), reason ?? null, ctx);
  }

  /**
   * A refund made outside the API integration (a Dashboard user): empty metadata, no request of ours.
   * Test helper, and `POST /_fake/refunds` on the admin API.
   */
  refundFromDashboard(input: { paymentIntent?: string; charge?: string; amount?: number }): FakeRefund {
    const charge = this.refundableCharge(input.paymentIntent, input.charge);
    const remaining = charge.amount_captured - charge.amount_refunded;
    const amount = input.amount ?? remaining;
    if (amount <= 0 || amount > remaining) {
      throw refused('amount_too_large', `Refund amount ${amount} is not within 1..${remaining}`, 'amount');
    }
    return this.refund(charge, amount, {}, 'requested_by_customer', {
      account: PLATFORM,
      requestId: stripeId('req'),
      idempotencyKey: null,
    });
  }

  private refundableCharge(piId: string | undefined, chargeId: string | undefined): FakeCharge {
    if (piId === undefined && chargeId === undefined) {
      throw invalidParam(
        'payment_intent',
        'One of charge or payment_intent is required.',
        'parameter_missing',
      );
    }
    if (piId !== undefined) {
      const pi = this.paymentIntents.get(piId);
      if (!pi) throw missing(piId, 'payment_intent', 'payment_intent');
      if (pi.status !== 'succeeded' || typeof pi.latest_charge !== 'string') {
        throw refused(
          'charge_not_refundable',
          `This PaymentIntent (${piId}) does not have a successful charge to refund.`,
          'payment_intent',
        );
      }
      const charge = this.charges.get(pi.latest_charge);
      invariant(charge, 'payment intent charge was evicted');
      return charge;
    }
    const charge = this.charges.get(chargeId as string);
    if (!charge) throw missing(chargeId as string, 'charge', 'charge');
    return charge;
  }

  private refund(
    charge: FakeCharge,
    amount: number,
    metadata: Record<string, string>,
    reason: FakeRefund['reason'],
    ctx: RequestContext,
  ): FakeRefund {
    const id = stripeId('re');
    const txn = this.addTxn(PLATFORM, {
      amount: -amount,
      currency: charge.currency,
      fee: 0,
      type: 'refund',
      reportingCategory: 'refund',
      source: id,
      description: 'REFUND FOR CHARGE',
    });
    const refund = build.refund({
      id,
      amount,
      charge,
      created: txn.created,
      metadata,
      reason,
      balanceTransaction: txn.id,
    });
    const previous = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount_captured;
    this.refunds.set(id, refund);
    this.emit('refund.created', refund, ctx);
    this.emit('charge.refunded', charge, ctx, previous);
    return refund;
  }

  retrieveRefund(id: string): FakeRefund {
    const r = this.refunds.get(id);
    if (!r) throw missing(id, 'refund');
    return r;
  }

  /**
   * The card network could not return a refund (closed or expired card): the refund fails after it
   * succeeded, the money comes back to the balance (a `refund_failure` transaction) and Stripe sends
   * `refund.failed`. Test helper, and `POST /_fake/refunds/{id}/fail`.
   */
  failRefund(id: string, failureReason = 'expired_or_canceled_card'): FakeRefund {
    const refund = this.retrieveRefund(id);
    if (refund.status === 'failed' || refund.status === 'canceled') {
      throw refused('refund_unexpected_state', `Refund ${id} is already ${refund.status}.`);
    }
    const txn = this.addTxn(PLATFORM, {
      amount: refund.amount,
      currency: refund.currency,
      fee: 0,
      type: 'refund_failure',
      reportingCategory: 'refund_failure',
      source: id,
      description: 'REFUND FAILURE',
    });
    const previous = { status: refund.status };
    refund.status = 'failed';
    refund.failure_reason = failureReason;
    refund.failure_balance_transaction = txn.id;
    const charge = this.charges.get(refund.charge as string);
    if (charge) {
      charge.amount_refunded -= refund.amount;
      charge.refunded = false;
    }
    const ctx = systemContext(PLATFORM);
    this.emit('refund.updated', refund, ctx, previous);
    this.emit('refund.failed', refund, ctx, previous);
    return refund;
  }

  // ----------------------------------------------------------------------------------------------------
  // Connect accounts and onboarding

  createAccount(params: FormObject, ctx: RequestContext): FakeAccount {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/accounts']);
    if (ctx.account !== PLATFORM) {
      throw refused('platform_api_key_expired', 'Only a platform can create connected accounts.');
    }
    const type = oneOf(params, 'type', ['custom', 'express', 'standard'] as const);
    const controller = params.controller;
    if (type === undefined && controller === undefined) {
      throw invalidParam('type', 'Missing required param: type.', 'parameter_missing');
    }
    const capabilities = readHash(params, 'capabilities', [
      'card_payments',
      'transfers',
      'us_bank_account_ach_payments',
    ]);
    const requested: string[] = [];
    for (const [name, value] of Object.entries(capabilities ?? {})) {
      if (
        typeof value !== 'object' ||
        Array.isArray(value) ||
        (value.requested !== 'true' && value.requested !== 'false')
      ) {
        throw invalidParam(`capabilities[${name}][requested]`, 'Invalid boolean');
      }
      if (value.requested === 'true') requested.push(name);
    }
    if (type === 'express' && requested.length === 0) {
      throw invalidParam(
        'capabilities',
        'Express accounts must request at least one capability, e.g. capabilities[transfers][requested]=true.',
      );
    }
    const id = stripeId('acct');
    const account = build.account({
      id,
      type: type ?? 'express',
      country: optionalString(params, 'country') ?? 'US',
      email: optionalString(params, 'email') ?? null,
      created: this.now(),
      metadata: readMetadata(params),
      defaultCurrency: optionalString(params, 'default_currency') ?? 'usd',
      businessType: oneOf(params, 'business_type', [
        'company',
        'government_entity',
        'individual',
        'non_profit',
      ] as const),
      requestedCapabilities: requested,
      onboarded: this.accountsStartEnabled,
    });
    if (this.accountsStartEnabled) this.addBankAccount(account);
    this.accounts.set(id, account);
    return account;
  }

  retrieveAccount(id: string): FakeAccount {
    const a = this.accounts.get(id);
    if (!a) throw missing(id, 'account');
    return a;
  }

  createAccountLink(params: FormObject): FakeAccountLink {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/account_links']);
    const accountId = requireString(params, 'account');
    const account = this.accounts.get(accountId);
    if (!account) throw missing(accountId, 'account', 'account');
    const type = oneOf(params, 'type', ['account_onboarding', 'account_update'] as const);
    if (type === undefined) throw invalidParam('type', 'Missing required param: type.', 'parameter_missing');
    const refreshUrl = requireUrl(params, 'refresh_url');
    const returnUrl = requireUrl(params, 'return_url');
    const token = stripeId('link').slice(5);
    const created = this.now();
    const link: FakeAccountLink = {
      object: 'account_link',
      created,
      expires_at: created + 300,
      url: `${this.onboardingBaseUrl}/${token}`,
    };
    this.accountLinks.set(token, { link, account: accountId, refreshUrl, returnUrl, used: false });
    return link;
  }

  /**
   * The tutor opens the onboarding link: a fresh link completes onboarding (details submitted,
   * requirements met, transfers and payouts enabled, a bank account on file), sends `account.updated`
   * and answers the return URL; an expired or used link answers the refresh URL, as Stripe does.
   */
  visitAccountLink(token: string): { redirectTo: string; completed: boolean } {
    const record = this.accountLinks.get(token);
    if (!record) throw missing(token, 'account link');
    if (record.used || this.now() > record.link.expires_at) {
      return { redirectTo: record.refreshUrl, completed: false };
    }
    record.used = true;
    this.completeOnboarding(record.account);
    return { redirectTo: record.returnUrl, completed: true };
  }

  /** Onboarding finished (or, `enabled: false`, requirements past due again). Sends `account.updated`. */
  setAccountEnabled(id: string, enabled: boolean): FakeAccount {
    if (enabled) return this.completeOnboarding(id);
    const a = this.retrieveAccount(id);
    const previous = {
      charges_enabled: a.charges_enabled,
      payouts_enabled: a.payouts_enabled,
      requirements: clone(a.requirements),
    };
    a.charges_enabled = false;
    a.payouts_enabled = false;
    a.requirements = build.requirements(['external_account'], 'requirements.past_due');
    for (const name of Object.keys(a.capabilities ?? {}))
      (a.capabilities as Record<string, string>)[name] = 'inactive';
    this.emit('account.updated', a, systemContext(id), previous);
    return a;
  }

  private completeOnboarding(id: string): FakeAccount {
    const a = this.retrieveAccount(id);
    const previous = {
      charges_enabled: a.charges_enabled,
      payouts_enabled: a.payouts_enabled,
      details_submitted: a.details_submitted,
      requirements: clone(a.requirements),
      capabilities: clone(a.capabilities),
    };
    a.charges_enabled = true;
    a.payouts_enabled = true;
    a.details_submitted = true;
    a.requirements = build.requirements([], null);
    a.tos_acceptance = { date: this.now() };
    for (const name of Object.keys(a.capabilities ?? {}))
      (a.capabilities as Record<string, string>)[name] = 'active';
    if (a.external_accounts?.data.length === 0) this.addBankAccount(a);
    this.emit('account.updated', a, systemContext(id), previous);
    return a;
  }

  private addBankAccount(a: FakeAccount): void {
    const bank = {
      id: stripeId('ba'),
      object: 'bank_account' as const,
      account: a.id,
      account_holder_name: null,
      account_holder_type: 'individual',
      account_type: null,
      bank_name: 'STRIPE TEST BANK',
      country: a.country ?? 'US',
      currency: a.default_currency ?? 'usd',
      default_for_currency: true,
      fingerprint: 'fpbank',
      last4: '6789',
      metadata: {},
      routing_number: '110000000',
      status: 'new',
    };
    a.external_accounts?.data.push(
      bank as unknown as NonNullable<FakeAccount['external_accounts']>['data'][number],
    );
  }

  private defaultBankAccount(account: string): string {
    if (account === PLATFORM) return 'ba_platform';
    return this.accounts.get(account)?.external_accounts?.data[0]?.id ?? 'ba_none';
  }

  // ----------------------------------------------------------------------------------------------------
  // Transfers

  createTransfer(params: FormObject, ctx: RequestContext): FakeTransfer {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/transfers']);
    if (ctx.account !== PLATFORM) {
      throw invalidParam('destination', 'Transfers can only be created by the platform account.');
    }
    const amount = requireAmount(params, 'amount', 1);
    const currency = requireCurrency(params);
    const destination = requireString(params, 'destination');
    const account = this.accounts.get(destination);
    if (!account) throw missing(destination, 'account', 'destination');
    if (account.capabilities?.transfers !== 'active') {
      throw refused(
        'insufficient_capabilities_for_transfer',
        'Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments',
        'destination',
      );
    }
    const sourceTransaction = optionalString(params, 'source_transaction');
    let availableOn = this.now();
    if (sourceTransaction !== undefined) {
      // The transfer takes its funds from that charge, pending or not: it becomes available on the
      // connected account when the charge's funds do.
      const charge = this.charges.get(sourceTransaction);
      if (!charge) throw missing(sourceTransaction, 'charge', 'source_transaction');
      if (charge.status !== 'succeeded' || charge.currency !== currency) {
        throw refused(
          'transfer_source_balance_parameters_mismatch',
          `The source_transaction ${sourceTransaction} must be a succeeded charge in ${currency}.`,
          'source_transaction',
        );
      }
      const used = this.transferredFrom.get(sourceTransaction) ?? 0;
      const left = charge.amount_captured - charge.amount_refunded - used;
      if (amount > left) {
        throw refused(
          'amount_too_large',
          `Transfer amount exceeds the amount left on source_transaction ${sourceTransaction} (${left}).`,
          'amount',
        );
      }
      const chargeTxn = this.book(PLATFORM).get(charge.balance_transaction as string);
      availableOn = Math.max(availableOn, chargeTxn?.available_on ?? availableOn);
      this.transferredFrom.set(sourceTransaction, used + amount);
    } else if (this.book(PLATFORM).availableIn(currency) < amount) {
      throw refused(
        'balance_insufficient',
        'You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card. See: https://stripe.com/docs/testing#available-balance',
        'amount',
      );
    }
    const id = stripeId('tr');
    const pending = availableOn - this.now();
    const txn = this.addTxn(PLATFORM, {
      amount: -amount,
      currency,
      fee: 0,
      type: 'transfer',
      reportingCategory: 'transfer',
      source: id,
      description: optionalString(params, 'description') ?? null,
      availableAfterSeconds: pending,
    });
    const paymentId = stripeId('py');
    const paymentTxn = this.addTxn(destination, {
      amount,
      currency,
      fee: 0,
      type: 'payment',
      reportingCategory: 'charge',
      source: paymentId,
      description: null,
      availableAfterSeconds: pending,
    });
    const transfer = build.transfer({
      id,
      amount,
      currency,
      created: txn.created,
      metadata: readMetadata(params),
      destination,
      destinationPayment: paymentId,
      balanceTransaction: txn.id,
      description: optionalString(params, 'description') ?? null,
      sourceTransaction: sourceTransaction ?? null,
      transferGroup: optionalString(params, 'transfer_group') ?? null,
    });
    this.transfers.set(id, transfer);
    this.charges.set(
      paymentId,
      build.destinationPayment({
        id: paymentId,
        amount,
        currency,
        created: txn.created,
        transfer: id,
        balanceTransaction: paymentTxn.id,
      }),
    );
    this.emit('transfer.created', transfer, ctx);
    return transfer;
  }

  retrieveTransfer(id: string): FakeTransfer {
    const t = this.transfers.get(id);
    if (!t) throw missing(id, 'transfer');
    return t;
  }

  // ----------------------------------------------------------------------------------------------------
  // Payouts: pending -> in_transit -> paid, or failed (even after paid) or canceled (while pending)

  createPayout(params: FormObject, ctx: RequestContext): FakePayout {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/payouts']);
    const amount = requireAmount(params, 'amount', 1);
    const currency = requireCurrency(params);
    const method = oneOf(params, 'method', ['instant', 'standard'] as const) ?? 'standard';
    if (ctx.account !== PLATFORM) {
      const account = this.accounts.get(ctx.account);
      if (!account) throw missing(ctx.account, 'account');
      if (!account.payouts_enabled) {
        throw refused(
          'payouts_not_allowed',
          'Payouts are not enabled for this account: its onboarding is not complete (see requirements.currently_due).',
        );
      }
    }
    if (this.book(ctx.account).availableIn(currency) < amount) {
      throw refused(
        'balance_insufficient',
        'You have insufficient funds in your Stripe account for this transfer. Your card balance is too low.',
        'amount',
      );
    }
    return this.payout(ctx.account, amount, currency, method, false, ctx, params);
  }

  /**
   * Stripe's automatic payout (the account's payout schedule): everything available in `currency`
   * goes to the bank, `automatic: true`, reconcilable to the transactions it settles. Test helper, and
   * `POST /_fake/accounts/{id}/automatic_payout`.
   */
  automaticPayout(account: string, currency: string): FakePayout {
    if (account !== PLATFORM) this.retrieveAccount(account);
    const amount = this.book(account).availableIn(currency);
    if (amount <= 0) throw refused('balance_insufficient', `No available ${currency} balance to pay out.`);
    return this.payout(account, amount, currency, 'standard', true, systemContext(account), {});
  }

  private payout(
    account: string,
    amount: number,
    currency: string,
    method: string,
    automatic: boolean,
    ctx: RequestContext,
    params: FormObject,
  ): FakePayout {
    const id = stripeId('po');
    const txn = this.addTxn(account, {
      amount: -amount,
      currency,
      fee: 0,
      type: 'payout',
      reportingCategory: 'payout',
      source: id,
      description: 'STRIPE PAYOUT',
    });
    this.book(account).assignToPayout(id);
    const payout = build.payout({
      id,
      amount,
      currency,
      created: txn.created,
      arrivalDate: txn.created + 2 * DAY,
      metadata: readMetadata(params),
      method,
      automatic,
      balanceTransaction: txn.id,
      destination: this.defaultBankAccount(account),
      description: optionalString(params, 'description') ?? 'STRIPE PAYOUT',
      statementDescriptor: optionalString(params, 'statement_descriptor') ?? null,
    });
    this.payouts.set(id, { payout, account });
    this.emit('payout.created', payout, ctx);
    return payout;
  }

  retrievePayout(id: string, ctx: RequestContext): FakePayout {
    const p = this.payouts.get(id);
    if (!p || p.account !== ctx.account) throw missing(id, 'payout');
    return p.payout;
  }

  /** `POST /v1/payouts/{id}/cancel`: only a pending, manual payout; the money returns to the balance. */
  cancelPayout(id: string, params: FormObject, ctx: RequestContext): FakePayout {
    allowOnly(params, ACCEPTED_PARAMS['POST /v1/payouts/{id}/cancel']);
    const record = this.payouts.get(id);
    if (!record || record.account !== ctx.account) throw missing(id, 'payout');
    const p = record.payout;
    if (p.automatic) {
      throw refused('payout_not_cancelable', "You can't cancel automatic Stripe payouts.");
    }
    if (p.status !== 'pending') {
      throw refused('payout_not_cancelable', `Payout ${id} is ${p.status} and can no longer be canceled.`);
    }
    const txn = this.addTxn(record.account, {
      amount: p.amount,
      currency: p.currency,
      fee: 0,
      type: 'payout_cancel',
      reportingCategory: 'payout_reversal',
      source: id,
      description: 'STRIPE PAYOUT CANCELED',
    });
    const previous = { status: p.status };
    p.status = 'canceled';
    p.failure_balance_transaction = txn.id;
    this.emit('payout.updated', p, ctx, previous);
    this.emit('payout.canceled', p, ctx, previous);
    return p;
  }

  /**
   * The bank's answer for a payout: `in_transit`, `paid`, or `failed` (the money returns to the
   * balance; Stripe documents that some failed payouts first show as paid, so failing a paid payout is
   * allowed). Automatic payouts finish reconciliation when paid.
   */
  settlePayout(
    id: string,
    outcome: 'in_transit' | 'paid' | 'failed',
    failureCode = 'account_closed',
  ): FakePayout {
    const record = this.payouts.get(id);
    if (!record) throw missing(id, 'payout');
    const p = record.payout;
    const ctx = systemContext(record.account);
    const from = p.status;
    const allowed =
      outcome === 'in_transit'
        ? from === 'pending'
        : outcome === 'paid'
          ? from === 'pending' || from === 'in_transit'
          : from === 'pending' || from === 'in_transit' || from === 'paid';
    if (!allowed) {
      throw refused('payout_unexpected_state', `Payout ${id} is ${from}; it cannot become ${outcome}.`);
    }
    if (outcome === 'paid' && from === 'pending') this.settlePayout(id, 'in_transit');
    const previous = { status: p.status };
    if (outcome === 'in_transit') {
      p.status = 'in_transit';
      this.emit('payout.updated', p, ctx, previous);
    } else if (outcome === 'paid') {
      p.status = 'paid';
      p.trace_id = { status: 'supported', value: `TRACE${id.slice(3, 15).toUpperCase()}` };
      this.emit('payout.updated', p, ctx, previous);
      this.emit('payout.paid', p, ctx, previous);
      if (p.automatic) {
        p.reconciliation_status = 'completed';
        this.emit('payout.reconciliation_completed', p, ctx, { reconciliation_status: 'in_progress' });
      }
    } else {
      const txn = this.addTxn(record.account, {
        amount: p.amount,
        currency: p.currency,
        fee: 0,
        type: 'payout_failure',
        reportingCategory: 'payout_reversal',
        source: p.id,
        description: 'STRIPE PAYOUT FAILURE',
      });
      p.status = 'failed';
      p.failure_code = failureCode;
      p.failure_message = PAYOUT_FAILURES[failureCode] ?? 'The payout failed.';
      p.failure_balance_transaction = txn.id;
      this.emit('payout.updated', p, ctx, previous);
      this.emit('payout.failed', p, ctx, previous);
    }
    return p;
  }

  // ----------------------------------------------------------------------------------------------------
  // Disputes (opened by the card network: test helpers and the admin API, not API endpoints)

  /**
   * A chargeback withdraws the disputed amount and the dispute fee at once
   * (`charge.dispute.created`, `charge.dispute.funds_withdrawn`); an inquiry (`inquiry: true`) moves
   * no money until it escalates.
   */
  openDispute(input: {
    paymentIntent?: string;
    charge?: string;
    reason?: string;
    inquiry?: boolean;
  }): FakeDispute {
    const chargeId =
      input.charge ??
      (input.paymentIntent
        ? (this.paymentIntents.get(input.paymentIntent)?.latest_charge as string | undefined)
        : undefined);
    const charge = chargeId ? this.charges.get(chargeId) : undefined;
    if (charge?.status !== 'succeeded') throw missing(chargeId ?? '(none)', 'charge', 'charge');
    const created = this.now();
    const d = build.dispute({
      id: stripeId('dp'),
      charge,
      created,
      reason: input.reason ?? (input.inquiry ? 'general' : 'fraudulent'),
      inquiry: input.inquiry === true,
      dueBy: created + 7 * DAY,
    });
    charge.disputed = true;
    this.disputes.set(d.id, d);
    const ctx = systemContext(PLATFORM);
    this.emit('charge.dispute.created', d, ctx);
    if (!input.inquiry) this.withdrawDisputeFunds(d, ctx);
    return d;
  }

  /** An inquiry that becomes a chargeback: funds withdrawn now. */
  escalateDispute(id: string): FakeDispute {
    const d = this.retrieveDispute(id);
    if (d.status !== 'warning_needs_response' && d.status !== 'warning_under_review') {
      throw refused('dispute_unexpected_state', `Dispute ${id} is ${d.status}, not an open inquiry.`);
    }
    const previous = { status: d.status };
    d.status = 'needs_response';
    d.is_charge_refundable = false;
    const ctx = systemContext(PLATFORM);
    this.emit('charge.dispute.updated', d, ctx, previous);
    this.withdrawDisputeFunds(d, ctx);
    return d;
  }

  private withdrawDisputeFunds(d: FakeDispute, ctx: RequestContext): void {
    const txn = this.addTxn(PLATFORM, {
      amount: -d.amount,
      currency: d.currency,
      fee: this.disputeFee,
      type: 'adjustment',
      reportingCategory: 'dispute',
      source: d.id,
      description: `Chargeback withdrawal for ${d.charge as string}`,
      feeDescription: 'Dispute fee',
    });
    d.balance_transactions.push(txn);
    this.emit('charge.dispute.funds_withdrawn', d, ctx);
  }

  closeDispute(id: string, outcome: 'won' | 'lost'): FakeDispute {
    const d = this.retrieveDispute(id);
    if (['won', 'lost', 'warning_closed', 'prevented'].includes(d.status)) {
      throw refused('dispute_unexpected_state', `Dispute ${id} is already closed.`);
    }
    const ctx = systemContext(PLATFORM);
    const previous = { status: d.status };
    if (d.status === 'warning_needs_response' || d.status === 'warning_under_review') {
      // An inquiry closes without a chargeback (won) or escalates first (lost).
      if (outcome === 'lost') this.escalateDispute(id);
      else {
        d.status = 'warning_closed';
        this.emit('charge.dispute.closed', d, ctx, previous);
        return d;
      }
    }
    if (outcome === 'won') {
      const txn = this.addTxn(PLATFORM, {
        amount: d.amount,
        currency: d.currency,
        // Stripe keeps the dispute fee even when the dispute is won (US accounts).
        fee: 0,
        type: 'adjustment',
        reportingCategory: 'dispute_reversal',
        source: id,
        description: `Chargeback reversal for ${d.charge as string}`,
      });
      d.balance_transactions.push(txn);
      d.status = 'won';
      this.emit('charge.dispute.funds_reinstated', d, ctx);
    } else {
      d.status = 'lost';
    }
    this.emit('charge.dispute.closed', d, ctx, previous);
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
    const currencies = new Set<string>(['usd', ...book.available.keys(), ...book.pending.keys()]);
    const entry = (amount: number, currency: string) => ({
      amount,
      currency,
      source_types: { card: amount },
    });
    return {
      object: 'balance',
      available: [...currencies].map((c) => entry(book.available.get(c) ?? 0, c)),
      livemode: false,
      pending: [...currencies].map((c) => entry(book.pending.get(c) ?? 0, c)),
    };
  }

  listBalanceTransactions(
    params: FormObject,
    ctx: RequestContext,
  ): { data: FakeBalanceTransaction[]; hasMore: boolean } {
    allowOnly(params, ACCEPTED_PARAMS['GET /v1/balance_transactions']);
    const limitText = optionalString(params, 'limit') ?? '10';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidParam('limit', 'Invalid limit: must be an integer between 1 and 100.');
    }
    const book = this.book(ctx.account);
    book.settle();
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
    if (payout !== undefined) {
      const record = this.payouts.get(payout);
      if (!record || record.account !== ctx.account) throw missing(payout, 'payout', 'payout');
      query.payout = payout;
    }
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
    return book.list(query);
  }

  retrieveBalanceTransaction(id: string, ctx: RequestContext): FakeBalanceTransaction {
    const book = this.book(ctx.account);
    book.settle();
    const t = book.get(id);
    if (!t) throw missing(id, 'balance transaction');
    return t;
  }

  /** Any object by its id (expand.ts), on `account` where objects belong to one. */
  lookup(id: string, account: string): FakeObject | undefined {
    const prefix = id.slice(0, id.indexOf('_'));
    switch (prefix) {
      case 'pi':
        return this.paymentIntents.get(id);
      case 'ch':
      case 'py':
        return this.charges.get(id);
      case 're':
        return this.refunds.get(id);
      case 'tr':
        return this.transfers.get(id);
      case 'po': {
        const p = this.payouts.get(id);
        return p && p.account === account ? p.payout : undefined;
      }
      case 'dp':
        return this.disputes.get(id);
      case 'txn': {
        const book = this.book(account);
        book.settle();
        return book.get(id);
      }
      case 'acct':
        return this.accounts.get(id);
      case 'cus':
        return this.customers.get(id);
      case 'pm':
        return (
          this.paymentMethods.get(id)?.method ??
          (TEST_PAYMENT_METHODS[id] ? this.retrievePaymentMethod(id) : undefined)
        );
      case 'seti':
        return this.setupIntents.get(id);
      default:
        return undefined;
    }
  }

  retrieveEvent(id: string): FakeEvent {
    const e = this.events.get(id);
    if (!e) throw missing(id, 'event');
    return e;
  }

  /**
   * Bench/soak helper: records a charge that succeeded (PI, charge, balance transaction) without HTTP or
   * events, so a million-transaction history can be seeded in seconds. Same objects as the API path;
   * its funds are available (a seeded history is older than the settlement delay).
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
        reportingCategory: 'charge',
        source: chargeId,
        description: null,
        feeDescription: 'Stripe processing fees',
      },
      created,
      input.ids?.balanceTransaction,
    );
    const pi = build.paymentIntent({
      id: piId,
      amount: input.amount,
      currency: input.currency,
      created,
      clientSecret: `${piId}_secret_seed`,
      metadata: input.metadata,
      description: null,
      customer: null,
      paymentMethod: 'pm_card_visa',
      paymentMethodTypes: ['card'],
      automaticPaymentMethods: false,
      captureMethod: 'automatic_async',
      setupFutureUsage: null,
      receiptEmail: null,
      statementDescriptor: null,
      statementDescriptorSuffix: null,
      transferGroup: null,
    });
    const charge = build.charge({ id: chargeId, pi, paymentMethod: 'pm_card_visa', card: VISA, created });
    Object.assign(charge, {
      amount_captured: input.amount,
      paid: true,
      captured: true,
      status: 'succeeded',
      balance_transaction: txn.id,
    });
    Object.assign(pi, { status: 'succeeded', amount_received: input.amount, latest_charge: chargeId });
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
      reportingCategory: string;
      source: string | null;
      description: string | null;
      feeDescription?: string;
      /** Incoming funds wait this long (card charges); outgoing money leaves at once. */
      availableAfterSeconds?: number;
    },
    createdAt?: number,
    id?: string,
  ): FakeBalanceTransaction {
    const created = createdAt ?? this.now();
    const txn = build.balanceTransaction({
      id: id ?? stripeId('txn'),
      amount: input.amount,
      fee: input.fee,
      currency: input.currency,
      created,
      availableOn: created + Math.max(0, input.availableAfterSeconds ?? 0),
      type: input.type,
      reportingCategory: input.reportingCategory,
      source: input.source,
      description: input.description,
      feeDescription: input.feeDescription,
    });
    // A seeded history older than the delay is available already.
    if (txn.available_on <= this.now()) txn.status = 'available';
    this.book(account).add(txn);
    return txn;
  }

  private emit(
    type: string,
    object: FakeObject,
    ctx: RequestContext,
    previousAttributes?: Record<string, unknown>,
  ): void {
    const event: FakeEvent = {
      id: stripeId('evt'),
      object: 'event',
      api_version: this.apiVersion,
      created: this.now(),
      data: {
        object: clone(object),
        ...(previousAttributes ? { previous_attributes: clone(previousAttributes) } : {}),
      },
      livemode: false,
      pending_webhooks: 1,
      request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
      type,
    };
    if (ctx.account !== PLATFORM) event.account = ctx.account;
    this.events.set(event.id, event);
    this.onEvent(event);
  }
}

const PAYOUT_FAILURES: Record<string, string> = {
  account_closed: 'The bank account has been closed.',
  account_frozen: 'The bank account has been frozen.',
  could_not_process: 'The bank could not process this payout.',
  insufficient_funds: 'Your Stripe account has insufficient funds to cover the payout.',
  no_account: 'The bank account details on file are probably incorrect.',
};

function requireUrl(params: FormObject, name: string): string {
  const url = requireString(params, name);
  if (!/^https?:\/\/\S+$/.test(url)) throw invalidParam(name, `Not a valid URL: ${name}`, 'url_invalid');
  return url;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}
