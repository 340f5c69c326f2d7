import type Stripe from 'stripe';
import type {
  FakeAccount,
  FakeBalanceTransaction,
  FakeCharge,
  FakeCustomer,
  FakeDispute,
  FakePaymentIntent,
  FakePaymentMethod,
  FakePayout,
  FakeRefund,
  FakeSetupIntent,
  FakeTransfer,
} from './types.js';

/**
 * Builders of whole Stripe objects with the values a test-mode object has when nothing else was asked
 * for (nulls, empty lists, Stripe's defaults). Typed as the SDK's types, so no always-present field
 * can be left out; the state machine (state.ts) sets what a request changes.
 */

const NULL_ADDRESS: Stripe.Address = {
  city: null,
  country: null,
  line1: null,
  line2: null,
  postal_code: null,
  state: null,
};

export function list<T>(url: string, data: T[] = []): Stripe.ApiList<T> {
  return { object: 'list', data, has_more: false, url };
}

export function paymentIntent(input: {
  id: string;
  amount: number;
  currency: string;
  created: number;
  clientSecret: string;
  metadata: Record<string, string>;
  description: string | null;
  customer: string | null;
  paymentMethod: string | null;
  paymentMethodTypes: string[];
  automaticPaymentMethods: boolean;
  captureMethod: FakePaymentIntent['capture_method'];
  setupFutureUsage: FakePaymentIntent['setup_future_usage'];
  receiptEmail: string | null;
  statementDescriptor: string | null;
  statementDescriptorSuffix: string | null;
  transferGroup: string | null;
}): FakePaymentIntent {
  return {
    id: input.id,
    object: 'payment_intent',
    allowed_payment_method_types: null,
    amount: input.amount,
    amount_capturable: 0,
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: input.automaticPaymentMethods
      ? { allow_redirects: 'always', enabled: true }
      : null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: input.captureMethod,
    client_secret: input.clientSecret,
    confirmation_method: 'automatic',
    created: input.created,
    currency: input.currency,
    customer: input.customer,
    customer_account: null,
    description: input.description,
    excluded_payment_method_types: null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    managed_payments: null,
    metadata: input.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: input.paymentMethod,
    payment_method_configuration_details: null,
    payment_method_options: {
      card: {
        installments: null,
        mandate_options: null,
        network: null,
        request_three_d_secure: 'automatic',
      },
    },
    payment_method_types: input.paymentMethodTypes,
    payment_record: null,
    processing: null,
    receipt_email: input.receiptEmail,
    review: null,
    setup_future_usage: input.setupFutureUsage,
    shipping: null,
    source: null,
    statement_descriptor: input.statementDescriptor,
    statement_descriptor_suffix: input.statementDescriptorSuffix,
    status: input.paymentMethod === null ? 'requires_payment_method' : 'requires_confirmation',
    transfer_group: input.transferGroup,
  };
}

export interface TestCard {
  brand: string;
  last4: string;
  funding: 'credit' | 'debit';
  country: string;
}

export function charge(input: {
  id: string;
  pi: FakePaymentIntent;
  paymentMethod: string;
  card: TestCard;
  created: number;
}): FakeCharge {
  const { pi } = input;
  return {
    id: input.id,
    object: 'charge',
    amount: pi.amount,
    amount_captured: 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: null,
    billing_details: { address: { ...NULL_ADDRESS }, email: null, name: null, phone: null, tax_id: null },
    calculated_statement_descriptor: 'WEMASTER',
    captured: false,
    created: input.created,
    currency: pi.currency,
    customer: pi.customer,
    description: pi.description,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: null,
    failure_message: null,
    fraud_details: {},
    livemode: false,
    metadata: { ...pi.metadata },
    on_behalf_of: null,
    outcome: {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: 'approved_by_network',
      reason: null,
      risk_level: 'normal',
      risk_score: 20,
      seller_message: 'Payment complete.',
      type: 'authorized',
    },
    paid: false,
    payment_intent: pi.id,
    payment_method: input.paymentMethod,
    payment_method_details: {
      type: 'card',
      card: {
        amount_authorized: pi.amount,
        authorization_code: null,
        brand: input.card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
        country: input.card.country,
        electronic_commerce_indicator: null,
        exp_month: 12,
        exp_year: 2034,
        fingerprint: `fp${input.card.last4}`,
        funding: input.card.funding,
        installments: null,
        last4: input.card.last4,
        mandate: null,
        network: input.card.brand,
        network_transaction_id: null,
        regulated_status: 'unregulated',
        three_d_secure: null,
        transaction_link_id: null,
        wallet: null,
      },
    },
    receipt_email: pi.receipt_email,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: pi.statement_descriptor,
    statement_descriptor_suffix: pi.statement_descriptor_suffix,
    status: 'pending',
    transfer_data: null,
    transfer_group: pi.transfer_group,
  };
}

export function refund(input: {
  id: string;
  amount: number;
  charge: FakeCharge;
  created: number;
  metadata: Record<string, string>;
  reason: FakeRefund['reason'];
  balanceTransaction: string | null;
}): FakeRefund {
  return {
    id: input.id,
    object: 'refund',
    amount: input.amount,
    balance_transaction: input.balanceTransaction,
    charge: input.charge.id,
    created: input.created,
    currency: input.charge.currency,
    customer: typeof input.charge.customer === 'string' ? input.charge.customer : null,
    customer_account: null,
    destination_details: { type: 'card', card: { type: 'refund', reference_status: 'pending' } },
    metadata: input.metadata,
    payment_intent: typeof input.charge.payment_intent === 'string' ? input.charge.payment_intent : null,
    payment_method: typeof input.charge.payment_method === 'string' ? input.charge.payment_method : null,
    reason: input.reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: 'succeeded',
    transfer_reversal: null,
  };
}

/** What a new Express account must still provide before Stripe enables transfers and payouts. */
export const ONBOARDING_REQUIREMENTS = [
  'business_profile.mcc',
  'business_profile.url',
  'external_account',
  'individual.dob.day',
  'individual.dob.month',
  'individual.dob.year',
  'individual.email',
  'individual.first_name',
  'individual.last_name',
  'individual.phone',
  'tos_acceptance.date',
  'tos_acceptance.ip',
];

export function account(input: {
  id: string;
  type: FakeAccount['type'];
  country: string;
  email: string | null;
  created: number;
  metadata: Record<string, string>;
  defaultCurrency: string;
  businessType: FakeAccount['business_type'] | undefined;
  requestedCapabilities: string[];
  onboarded: boolean;
}): FakeAccount {
  const due = input.onboarded ? [] : [...ONBOARDING_REQUIREMENTS];
  const status = input.onboarded ? 'active' : 'inactive';
  const capabilities: Stripe.Account.Capabilities = {};
  for (const name of input.requestedCapabilities) {
    (capabilities as Record<string, string>)[name] = status;
  }
  return {
    id: input.id,
    object: 'account',
    business_profile: null,
    business_type: input.businessType ?? null,
    capabilities,
    charges_enabled: input.onboarded,
    controller: {
      fees: { payer: 'application_express' },
      is_controller: true,
      losses: { payments: 'application' },
      requirement_collection: 'stripe',
      stripe_dashboard: { type: 'express' },
      type: 'application',
    },
    country: input.country,
    created: input.created,
    default_currency: input.defaultCurrency,
    details_submitted: input.onboarded,
    email: input.email,
    external_accounts: list(`/v1/accounts/${input.id}/external_accounts`),
    future_requirements: requirements([], null),
    metadata: input.metadata,
    payouts_enabled: input.onboarded,
    requirements: requirements(due, input.onboarded ? null : 'requirements.past_due'),
    settings: null,
    tos_acceptance: { date: input.onboarded ? input.created : null },
    type: input.type,
  };
}

export function requirements(
  due: string[],
  disabledReason: Stripe.Account.Requirements.DisabledReason | null,
): Stripe.Account.Requirements {
  return {
    alternatives: [],
    current_deadline: null,
    currently_due: [...due],
    disabled_reason: disabledReason,
    errors: [],
    eventually_due: [...due],
    past_due: [...due],
    pending_verification: [],
  };
}

export function transfer(input: {
  id: string;
  amount: number;
  currency: string;
  created: number;
  metadata: Record<string, string>;
  destination: string;
  destinationPayment: string;
  balanceTransaction: string;
  description: string | null;
  sourceTransaction: string | null;
  transferGroup: string | null;
}): FakeTransfer {
  return {
    id: input.id,
    object: 'transfer',
    amount: input.amount,
    amount_reversed: 0,
    balance_transaction: input.balanceTransaction,
    created: input.created,
    currency: input.currency,
    description: input.description,
    destination: input.destination,
    destination_payment: input.destinationPayment,
    livemode: false,
    metadata: input.metadata,
    reversals: list(`/v1/transfers/${input.id}/reversals`),
    reversed: false,
    source_transaction: input.sourceTransaction,
    source_type: 'card',
    transfer_group: input.transferGroup,
  };
}

export function payout(input: {
  id: string;
  amount: number;
  currency: string;
  created: number;
  arrivalDate: number;
  metadata: Record<string, string>;
  method: string;
  automatic: boolean;
  balanceTransaction: string;
  destination: string;
  description: string | null;
  statementDescriptor: string | null;
}): FakePayout {
  return {
    id: input.id,
    object: 'payout',
    amount: input.amount,
    application_fee: null,
    application_fee_amount: null,
    arrival_date: input.arrivalDate,
    automatic: input.automatic,
    balance_transaction: input.balanceTransaction,
    created: input.created,
    currency: input.currency,
    description: input.description,
    destination: input.destination,
    failure_balance_transaction: null,
    failure_code: null,
    failure_message: null,
    livemode: false,
    metadata: input.metadata,
    method: input.method,
    original_payout: null,
    payout_method: null,
    // Automatic payouts can be reconciled to the transactions they settle; manual ones cannot.
    reconciliation_status: input.automatic ? 'in_progress' : 'not_applicable',
    reversed_by: null,
    source_type: 'card',
    statement_descriptor: input.statementDescriptor,
    status: 'pending',
    trace_id: { status: 'pending', value: null },
    type: 'bank_account',
  };
}

export function dispute(input: {
  id: string;
  charge: FakeCharge;
  created: number;
  reason: string;
  inquiry: boolean;
  dueBy: number;
}): FakeDispute {
  return {
    id: input.id,
    object: 'dispute',
    amount: input.charge.amount - input.charge.amount_refunded,
    balance_transactions: [],
    charge: input.charge.id,
    created: input.created,
    currency: input.charge.currency,
    enhanced_eligibility_types: [],
    evidence: {
      access_activity_log: null,
      billing_address: null,
      cancellation_policy: null,
      cancellation_policy_disclosure: null,
      cancellation_rebuttal: null,
      customer_communication: null,
      customer_email_address: null,
      customer_name: null,
      customer_purchase_ip: null,
      customer_signature: null,
      duplicate_charge_documentation: null,
      duplicate_charge_explanation: null,
      duplicate_charge_id: null,
      enhanced_evidence: {},
      product_description: null,
      receipt: null,
      refund_policy: null,
      refund_policy_disclosure: null,
      refund_refusal_explanation: null,
      service_date: null,
      service_documentation: null,
      shipping_address: null,
      shipping_carrier: null,
      shipping_date: null,
      shipping_documentation: null,
      shipping_tracking_number: null,
      uncategorized_file: null,
      uncategorized_text: null,
    },
    evidence_details: {
      due_by: input.dueBy,
      enhanced_eligibility: {},
      has_evidence: false,
      past_due: false,
      submission_count: 0,
      submission_method: 'not_submitted',
    },
    intended_submission_method: null,
    is_charge_refundable: input.inquiry,
    livemode: false,
    metadata: {},
    payment_intent: input.charge.payment_intent,
    payment_method_details: {
      type: 'card',
      card: {
        brand: 'visa',
        case_type: input.inquiry ? 'inquiry' : 'chargeback',
        network: 'visa',
        network_reason_code: input.inquiry ? '10.4' : '4837',
      },
    },
    reason: input.reason,
    status: input.inquiry ? 'warning_needs_response' : 'needs_response',
  };
}

export function balanceTransaction(input: {
  id: string;
  amount: number;
  fee: number;
  currency: string;
  created: number;
  availableOn: number;
  type: FakeBalanceTransaction['type'];
  reportingCategory: string;
  source: string | null;
  description: string | null;
  feeDescription: string | undefined;
}): FakeBalanceTransaction {
  return {
    id: input.id,
    object: 'balance_transaction',
    amount: input.amount,
    available_on: input.availableOn,
    balance_type: 'payments',
    created: input.created,
    currency: input.currency,
    description: input.description,
    exchange_rate: null,
    fee: input.fee,
    fee_details:
      input.fee === 0
        ? []
        : [
            {
              amount: input.fee,
              application: null,
              currency: input.currency,
              description: input.feeDescription ?? 'Stripe fee',
              type: 'stripe_fee',
            },
          ],
    net: input.amount - input.fee,
    reporting_category: input.reportingCategory,
    source: input.source,
    status: input.availableOn > input.created ? 'pending' : 'available',
    type: input.type,
  };
}

export function customer(input: {
  id: string;
  created: number;
  email: string | null;
  name: string | null;
  description: string | null;
  metadata: Record<string, string>;
}): FakeCustomer {
  return {
    id: input.id,
    object: 'customer',
    address: null,
    balance: 0,
    created: input.created,
    default_source: null,
    description: input.description,
    email: input.email,
    invoice_settings: {
      custom_fields: null,
      default_payment_method: null,
      footer: null,
      rendering_options: null,
    },
    livemode: false,
    metadata: input.metadata,
    name: input.name,
    shipping: null,
  };
}

export function paymentMethod(input: {
  id: string;
  created: number;
  card: TestCard;
  customer: string | null;
  metadata: Record<string, string>;
}): FakePaymentMethod {
  return {
    id: input.id,
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: { address: { ...NULL_ADDRESS }, email: null, name: null, phone: null, tax_id: null },
    card: {
      brand: input.card.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'unchecked' },
      country: input.card.country,
      display_brand: input.card.brand,
      exp_month: 12,
      exp_year: 2034,
      fingerprint: `fp${input.card.last4}`,
      funding: input.card.funding,
      generated_from: null,
      last4: input.card.last4,
      networks: { available: [input.card.brand], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: input.created,
    customer: input.customer,
    customer_account: null,
    livemode: false,
    metadata: input.metadata,
    type: 'card',
  };
}

export function setupIntent(input: {
  id: string;
  created: number;
  clientSecret: string;
  customer: string | null;
  paymentMethod: string | null;
  paymentMethodTypes: string[];
  automaticPaymentMethods: boolean;
  usage: string;
  description: string | null;
  metadata: Record<string, string>;
}): FakeSetupIntent {
  return {
    id: input.id,
    object: 'setup_intent',
    allowed_payment_method_types: null,
    application: null,
    automatic_payment_methods: input.automaticPaymentMethods
      ? { allow_redirects: 'always', enabled: true }
      : null,
    cancellation_reason: null,
    client_secret: input.clientSecret,
    created: input.created,
    customer: input.customer,
    description: input.description,
    excluded_payment_method_types: null,
    last_setup_error: null,
    latest_attempt: null,
    livemode: false,
    mandate: null,
    metadata: input.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: input.paymentMethod,
    payment_method_configuration_details: null,
    payment_method_options: {
      card: { mandate_options: null, network: null, request_three_d_secure: 'automatic' },
    },
    payment_method_types: input.paymentMethodTypes,
    single_use_mandate: null,
    status: input.paymentMethod === null ? 'requires_payment_method' : 'requires_confirmation',
    usage: input.usage,
  };
}

/** The charge a transfer creates on the connected account (`py_…`, its `destination_payment`). */
export function destinationPayment(input: {
  id: string;
  amount: number;
  currency: string;
  created: number;
  transfer: string;
  balanceTransaction: string;
}): FakeCharge {
  const base = charge({
    id: input.id,
    pi: paymentIntent({
      id: 'pi_none',
      amount: input.amount,
      currency: input.currency,
      created: input.created,
      clientSecret: '',
      metadata: {},
      description: null,
      customer: null,
      paymentMethod: null,
      paymentMethodTypes: ['card'],
      automaticPaymentMethods: false,
      captureMethod: 'automatic',
      setupFutureUsage: null,
      receiptEmail: null,
      statementDescriptor: null,
      statementDescriptorSuffix: null,
      transferGroup: null,
    }),
    paymentMethod: '',
    card: { brand: 'visa', last4: '0000', funding: 'credit', country: 'US' },
    created: input.created,
  });
  return {
    ...base,
    amount_captured: input.amount,
    balance_transaction: input.balanceTransaction,
    calculated_statement_descriptor: null,
    captured: true,
    outcome: null,
    paid: true,
    payment_intent: null,
    payment_method: null,
    payment_method_details: { type: 'stripe_account', stripe_account: {} },
    source_transfer: input.transfer,
    status: 'succeeded',
  };
}
