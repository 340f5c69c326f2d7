import type Stripe from 'stripe';

/**
 * The Stripe objects, webhook events and request parameters the gateway, the reconciler and the fake
 * exchange, as the `stripe` SDK declares them for the API version it pins. The contract tests generate
 * JSON Schemas from these interfaces at test time (stripeSchemas.ts); nothing at run time imports it.
 */
export interface StripeObjects {
  payment_intent: Stripe.PaymentIntent;
  charge: Stripe.Charge;
  refund: Stripe.Refund;
  account: Stripe.Account;
  account_link: Stripe.AccountLink;
  transfer: Stripe.Transfer;
  payout: Stripe.Payout;
  dispute: Stripe.Dispute;
  balance: Stripe.Balance;
  balance_transaction: Stripe.BalanceTransaction;
  setup_intent: Stripe.SetupIntent;
  payment_method: Stripe.PaymentMethod;
  customer: Stripe.Customer;
  error: StripeErrorResponse;
}

/** Stripe's `{ error: {...} }` body. */
export interface StripeErrorResponse {
  error: Stripe.StripeRawError;
}

/** Every webhook event type the app handles or the fake sends, by its SDK interface. */
export interface StripeEvents {
  'account.updated': Stripe.AccountUpdatedEvent;
  'charge.succeeded': Stripe.ChargeSucceededEvent;
  'charge.failed': Stripe.ChargeFailedEvent;
  'charge.refunded': Stripe.ChargeRefundedEvent;
  'charge.refund.updated': Stripe.ChargeRefundUpdatedEvent;
  'charge.dispute.created': Stripe.ChargeDisputeCreatedEvent;
  'charge.dispute.updated': Stripe.ChargeDisputeUpdatedEvent;
  'charge.dispute.closed': Stripe.ChargeDisputeClosedEvent;
  'charge.dispute.funds_withdrawn': Stripe.ChargeDisputeFundsWithdrawnEvent;
  'charge.dispute.funds_reinstated': Stripe.ChargeDisputeFundsReinstatedEvent;
  'customer.created': Stripe.CustomerCreatedEvent;
  'payment_intent.created': Stripe.PaymentIntentCreatedEvent;
  'payment_intent.requires_action': Stripe.PaymentIntentRequiresActionEvent;
  'payment_intent.succeeded': Stripe.PaymentIntentSucceededEvent;
  'payment_intent.payment_failed': Stripe.PaymentIntentPaymentFailedEvent;
  'refund.created': Stripe.RefundCreatedEvent;
  'refund.updated': Stripe.RefundUpdatedEvent;
  'refund.failed': Stripe.RefundFailedEvent;
  'transfer.created': Stripe.TransferCreatedEvent;
  'payout.created': Stripe.PayoutCreatedEvent;
  'payout.updated': Stripe.PayoutUpdatedEvent;
  'payout.paid': Stripe.PayoutPaidEvent;
  'payout.failed': Stripe.PayoutFailedEvent;
  'payout.canceled': Stripe.PayoutCanceledEvent;
  'payout.reconciliation_completed': Stripe.PayoutReconciliationCompletedEvent;
  'setup_intent.created': Stripe.SetupIntentCreatedEvent;
  'setup_intent.succeeded': Stripe.SetupIntentSucceededEvent;
  'setup_intent.setup_failed': Stripe.SetupIntentSetupFailedEvent;
  'payment_method.attached': Stripe.PaymentMethodAttachedEvent;
  'balance.available': Stripe.BalanceAvailableEvent;
}

/** Request parameters of every endpoint the fake serves. */
export interface StripeParams {
  'POST /v1/payment_intents': Stripe.PaymentIntentCreateParams;
  'POST /v1/payment_intents/{id}/confirm': Stripe.PaymentIntentConfirmParams;
  'GET /v1/payment_intents/{id}': Stripe.PaymentIntentRetrieveParams;
  'POST /v1/refunds': Stripe.RefundCreateParams;
  'GET /v1/refunds/{id}': Stripe.RefundRetrieveParams;
  'POST /v1/accounts': Stripe.AccountCreateParams;
  'GET /v1/accounts/{id}': Stripe.AccountRetrieveParams;
  'POST /v1/account_links': Stripe.AccountLinkCreateParams;
  'POST /v1/transfers': Stripe.TransferCreateParams;
  'GET /v1/transfers/{id}': Stripe.TransferRetrieveParams;
  'POST /v1/payouts': Stripe.PayoutCreateParams;
  'GET /v1/payouts/{id}': Stripe.PayoutRetrieveParams;
  'POST /v1/payouts/{id}/cancel': Stripe.PayoutCancelParams;
  'GET /v1/balance': Stripe.BalanceRetrieveParams;
  'GET /v1/balance_transactions': Stripe.BalanceTransactionListParams;
  'GET /v1/balance_transactions/{id}': Stripe.BalanceTransactionRetrieveParams;
  'GET /v1/disputes/{id}': Stripe.DisputeRetrieveParams;
  'GET /v1/events/{id}': Stripe.EventRetrieveParams;
  'POST /v1/customers': Stripe.CustomerCreateParams;
  'GET /v1/customers/{id}': Stripe.CustomerRetrieveParams;
  'POST /v1/setup_intents': Stripe.SetupIntentCreateParams;
  'POST /v1/setup_intents/{id}/confirm': Stripe.SetupIntentConfirmParams;
  'GET /v1/setup_intents/{id}': Stripe.SetupIntentRetrieveParams;
  'POST /v1/payment_methods/{id}/attach': Stripe.PaymentMethodAttachParams;
  'GET /v1/payment_methods/{id}': Stripe.PaymentMethodRetrieveParams;
}

/** The one root the schema is generated from, so shared definitions are generated and compiled once. */
export interface StripeContractTypes {
  objects: StripeObjects;
  events: StripeEvents;
  params: StripeParams;
}
