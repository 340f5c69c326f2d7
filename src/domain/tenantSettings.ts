import { type Static, Type } from '@sinclair/typebox';
import { requireTimeZone } from './calendar.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { BPS_DENOMINATOR, isKnownCurrency } from './money.js';
import { MAX_REFERRAL_CLAWBACK_DAYS, MAX_REFERRAL_CREDIT, MAX_REFERRAL_MONTHLY_CAP } from './referral.js';
import { CurrencySchema, InstantSchema, Nullable, strictObject } from './schema.js';
import { commissionTaxFits, type TaxRate, TaxRateSchema } from './tax.js';
import { parseInstant, requireIntegerInRange, toIso, validationFailed } from './validate.js';

/**
 * Per-tenant money policy, one stream per tenant: `tenant-{t}.settings`. Every change appends the full
 * settings in force after it, so a reader needs only the last event. Bookings snapshot the part they
 * need (BookingPolicy) when placed, so later changes never alter an existing booking.
 *
 * Amounts (topUpMin, topUpMax, payoutMin) are minor units and apply to every allowed currency.
 */
const MAX_DAYS = 365;
const MAX_WINDOW_HOURS = 24 * 90;
const MAX_ALLOWED_CURRENCIES = 32;
const MAX_PROPOSAL_EXPIRY_HOURS = 24 * 30;
const MAX_URL_CHARS = 2048;

const intIn = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });

/** The part of the settings a booking snapshots when it is placed. */
export const BookingPolicySchema = strictObject({
  /** Platform commission on completed bookings, basis points; < 10000 so the tutor always earns something. */
  commissionRateBps: intIn(0, BPS_DENOMINATOR - 1),
  /** Cancelling at least this many hours before the session is free. */
  cancellationFreeWindowHours: intIn(0, MAX_WINDOW_HOURS),
  /** Fee charged for a late cancellation, in basis points of the price. */
  cancellationFeeBps: intIn(0, BPS_DENOMINATOR),
  /** A hold not completed within this many days after the scheduled time is released (expired). */
  holdExpiryDays: intIn(1, MAX_DAYS),
  /** Days a completed booking's tutor share stays pending before it becomes withdrawable. */
  earningsHoldPeriodDays: intIn(0, MAX_DAYS),
  /**
   * Tax on the commission (the tenant's billing settings when the booking was placed, tax.ts); absent
   * when none applies, as in every booking placed before billing settings existed.
   */
  commissionTax: Type.Optional(TaxRateSchema),
});
export type BookingPolicy = Static<typeof BookingPolicySchema>;

const { commissionTax: _commissionTax, ...tenantPolicyProperties } = BookingPolicySchema.properties;

export const TenantSettingsSchema = strictObject({
  ...tenantPolicyProperties,
  topUpMin: intIn(1, Number.MAX_SAFE_INTEGER),
  topUpMax: intIn(1, Number.MAX_SAFE_INTEGER),
  payoutMin: intIn(1, Number.MAX_SAFE_INTEGER),
  allowedCurrencies: Type.Array(CurrencySchema, { minItems: 1, maxItems: MAX_ALLOWED_CURRENCIES }),
  /**
   * Four eyes: a manual adjustment of more than this many minor units takes effect only when a second
   * finance admin approves it (adjustmentProposal.ts); up to it one finance admin may make it directly.
   */
  adjustmentApprovalThreshold: intIn(0, Number.MAX_SAFE_INTEGER),
  /** An adjustment proposal not approved or rejected within this many hours expires. */
  adjustmentProposalExpiryHours: intIn(1, MAX_PROPOSAL_EXPIRY_HOURS),
  /**
   * Where Stripe's onboarding (Account Links) sends a tutor: `return_url` when they leave the flow,
   * `refresh_url` when the link expired or was used (the tutor app asks for a new link there). Absolute
   * http(s) URLs of the tutor app; null: not configured (the embedded default falls back to the app's
   * own start page).
   */
  payoutOnboardingReturnUrl: Nullable(Type.String({ minLength: 1, maxLength: MAX_URL_CHARS })),
  payoutOnboardingRefreshUrl: Nullable(Type.String({ minLength: 1, maxLength: MAX_URL_CHARS })),
  /**
   * The tenant's calendar (an IANA name, e.g. Europe/Berlin): the days, weeks and months spending
   * limits count in (spendingLimits.ts).
   */
  timeZone: Type.String({ minLength: 1, maxLength: 64 }),
  /**
   * The daily reconciliation with Stripe (src/reconciliation/dailyRuns.ts): at this hour (UTC) each day
   * the scheduler reconciles the previous UTC day; null: no daily run (finance admins start runs).
   */
  reconciliationDailyHourUtc: Nullable(intIn(0, 23)),
  /**
   * Referral credits (referral.ts), minor units of the qualifying booking's currency: what the referee
   * and the referrer each get when the referee's first paid booking is captured (both 0: no programme).
   */
  referralRefereeCredit: intIn(0, MAX_REFERRAL_CREDIT),
  referralReferrerCredit: intIn(0, MAX_REFERRAL_CREDIT),
  /** Rewards one referrer may earn per calendar month of timeZone; more referees are recorded as capped. */
  referralMonthlyCap: intIn(0, MAX_REFERRAL_MONTHLY_CAP),
  /** A full refund of the qualifying booking within this many days of the qualification claws both back. */
  referralClawbackDays: intIn(0, MAX_REFERRAL_CLAWBACK_DAYS),
});
export type TenantSettings = Static<typeof TenantSettingsSchema>;

/**
 * The settings as a TenantSettingsUpdated event stores them. The settings added after the first version
 * are optional here: events stored before them hold none, which means the default (validateTenantSettings
 * fills it in when the event is applied). Events written now always hold every setting.
 */
const StoredTenantSettingsSchema = strictObject({
  ...TenantSettingsSchema.properties,
  adjustmentApprovalThreshold: Type.Optional(TenantSettingsSchema.properties.adjustmentApprovalThreshold),
  adjustmentProposalExpiryHours: Type.Optional(TenantSettingsSchema.properties.adjustmentProposalExpiryHours),
  payoutOnboardingReturnUrl: Type.Optional(TenantSettingsSchema.properties.payoutOnboardingReturnUrl),
  payoutOnboardingRefreshUrl: Type.Optional(TenantSettingsSchema.properties.payoutOnboardingRefreshUrl),
  timeZone: Type.Optional(TenantSettingsSchema.properties.timeZone),
  reconciliationDailyHourUtc: Type.Optional(TenantSettingsSchema.properties.reconciliationDailyHourUtc),
  referralRefereeCredit: Type.Optional(TenantSettingsSchema.properties.referralRefereeCredit),
  referralReferrerCredit: Type.Optional(TenantSettingsSchema.properties.referralReferrerCredit),
  referralMonthlyCap: Type.Optional(TenantSettingsSchema.properties.referralMonthlyCap),
  referralClawbackDays: Type.Optional(TenantSettingsSchema.properties.referralClawbackDays),
});

/**
 * Defaults: 20% commission, 7-day earnings hold, free cancellation until 24 h
 * before, 50% late-cancellation fee (half the price: the tutor reserved the slot), holds expire 7 days
 * after the scheduled time; top-ups 5.00..10,000.00, payouts from 10.00, manual adjustments above 10,000.00
 * need a second finance admin, proposals expire after 72 hours (in 2-decimal currencies).
 */
export const DEFAULT_TENANT_SETTINGS: Readonly<TenantSettings> = Object.freeze({
  commissionRateBps: 2000,
  earningsHoldPeriodDays: 7,
  cancellationFreeWindowHours: 24,
  cancellationFeeBps: 5000,
  holdExpiryDays: 7,
  topUpMin: 500,
  topUpMax: 1_000_000,
  payoutMin: 1000,
  allowedCurrencies: Object.freeze(['usd', 'eur', 'gbp']) as unknown as string[],
  adjustmentApprovalThreshold: 1_000_000,
  adjustmentProposalExpiryHours: 72,
  payoutOnboardingReturnUrl: null,
  payoutOnboardingRefreshUrl: null,
  timeZone: 'UTC',
  reconciliationDailyHourUtc: null,
  referralRefereeCredit: 0,
  referralReferrerCredit: 0,
  referralMonthlyCap: 10,
  referralClawbackDays: 30,
});

export const defaultTenantSettings = (): TenantSettings => ({
  ...DEFAULT_TENANT_SETTINGS,
  allowedCurrencies: [...DEFAULT_TENANT_SETTINGS.allowedCurrencies],
});

/** The tenant runs a referral programme when it pays either side something (referral.ts). */
export const referralProgramActive = (settings: TenantSettings): boolean =>
  settings.referralRefereeCredit > 0 || settings.referralReferrerCredit > 0;

export function bookingPolicyFrom(settings: TenantSettings, commissionTax?: TaxRate): BookingPolicy {
  return {
    commissionRateBps: settings.commissionRateBps,
    cancellationFreeWindowHours: settings.cancellationFreeWindowHours,
    cancellationFeeBps: settings.cancellationFeeBps,
    holdExpiryDays: settings.holdExpiryDays,
    earningsHoldPeriodDays: settings.earningsHoldPeriodDays,
    ...(commissionTax ? { commissionTax } : {}),
  };
}

/** Validates a BookingPolicy snapshot (it arrives inside commands). */
export function validateBookingPolicy(value: unknown, field = 'policy'): BookingPolicy {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed(`${field} must be an object`, { field });
  }
  const p = value as Record<string, unknown>;
  return {
    commissionRateBps: requireIntegerInRange(
      p.commissionRateBps,
      `${field}.commissionRateBps`,
      0,
      BPS_DENOMINATOR - 1,
    ),
    cancellationFreeWindowHours: requireIntegerInRange(
      p.cancellationFreeWindowHours,
      `${field}.cancellationFreeWindowHours`,
      0,
      MAX_WINDOW_HOURS,
    ),
    cancellationFeeBps: requireIntegerInRange(
      p.cancellationFeeBps,
      `${field}.cancellationFeeBps`,
      0,
      BPS_DENOMINATOR,
    ),
    holdExpiryDays: requireIntegerInRange(p.holdExpiryDays, `${field}.holdExpiryDays`, 1, MAX_DAYS),
    earningsHoldPeriodDays: requireIntegerInRange(
      p.earningsHoldPeriodDays,
      `${field}.earningsHoldPeriodDays`,
      0,
      MAX_DAYS,
    ),
    ...(p.commissionTax === undefined ? {} : { commissionTax: validateCommissionTax(p, field) }),
  };
}

function validateCommissionTax(p: Record<string, unknown>, field: string): TaxRate {
  const tax = p.commissionTax as Record<string, unknown> | null;
  if (tax === null || typeof tax !== 'object' || typeof tax.inclusive !== 'boolean') {
    validationFailed(`${field}.commissionTax must be {rateBps, inclusive}`, {
      field: `${field}.commissionTax`,
    });
  }
  const rate: TaxRate = {
    rateBps: requireIntegerInRange(tax.rateBps, `${field}.commissionTax.rateBps`, 1, BPS_DENOMINATOR),
    inclusive: tax.inclusive,
  };
  if (!commissionTaxFits(p.commissionRateBps as number, rate)) {
    validationFailed('the commission plus its tax on top would exceed the price', {
      field: `${field}.commissionTax`,
    });
  }
  return rate;
}

/** Validates a complete settings object: every field present, in range, and consistent. */
export function validateTenantSettings(value: unknown): TenantSettings {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed('settings must be an object', { field: 'settings' });
  }
  const s = value as Record<string, unknown>;
  const unknownKeys = Object.keys(s).filter((k) => !SETTINGS_KEYS.includes(k as keyof TenantSettings));
  if (unknownKeys.length > 0) {
    validationFailed(`unknown settings: ${unknownKeys.join(', ')}`, { fields: unknownKeys });
  }
  const policy = validateBookingPolicy(s, 'settings');
  const topUpMin = requireIntegerInRange(s.topUpMin, 'settings.topUpMin', 1, Number.MAX_SAFE_INTEGER);
  const topUpMax = requireIntegerInRange(s.topUpMax, 'settings.topUpMax', 1, Number.MAX_SAFE_INTEGER);
  if (topUpMax < topUpMin) {
    validationFailed('settings.topUpMax must be >= settings.topUpMin', { field: 'settings.topUpMax' });
  }
  const payoutMin = requireIntegerInRange(s.payoutMin, 'settings.payoutMin', 1, Number.MAX_SAFE_INTEGER);
  const currencies = s.allowedCurrencies;
  if (
    !Array.isArray(currencies) ||
    currencies.length === 0 ||
    currencies.length > MAX_ALLOWED_CURRENCIES ||
    !currencies.every(isKnownCurrency) ||
    new Set(currencies).size !== currencies.length
  ) {
    validationFailed(
      `settings.allowedCurrencies must be 1-${MAX_ALLOWED_CURRENCIES} distinct supported lowercase ISO 4217 codes`,
      { field: 'settings.allowedCurrencies' },
    );
  }
  // Settings added after the first version: events stored before them hold none, and mean the default.
  const adjustmentApprovalThreshold = requireIntegerInRange(
    s.adjustmentApprovalThreshold ?? DEFAULT_TENANT_SETTINGS.adjustmentApprovalThreshold,
    'settings.adjustmentApprovalThreshold',
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const adjustmentProposalExpiryHours = requireIntegerInRange(
    s.adjustmentProposalExpiryHours ?? DEFAULT_TENANT_SETTINGS.adjustmentProposalExpiryHours,
    'settings.adjustmentProposalExpiryHours',
    1,
    MAX_PROPOSAL_EXPIRY_HOURS,
  );
  return {
    ...policy,
    topUpMin,
    topUpMax,
    payoutMin,
    allowedCurrencies: [...(currencies as string[])],
    adjustmentApprovalThreshold,
    adjustmentProposalExpiryHours,
    payoutOnboardingReturnUrl: optionalUrl(s.payoutOnboardingReturnUrl, 'settings.payoutOnboardingReturnUrl'),
    payoutOnboardingRefreshUrl: optionalUrl(
      s.payoutOnboardingRefreshUrl,
      'settings.payoutOnboardingRefreshUrl',
    ),
    timeZone: requireTimeZone(s.timeZone ?? DEFAULT_TENANT_SETTINGS.timeZone, 'settings.timeZone'),
    reconciliationDailyHourUtc:
      s.reconciliationDailyHourUtc === undefined || s.reconciliationDailyHourUtc === null
        ? null
        : requireIntegerInRange(s.reconciliationDailyHourUtc, 'settings.reconciliationDailyHourUtc', 0, 23),
    referralRefereeCredit: defaulted(s, 'referralRefereeCredit', 0, MAX_REFERRAL_CREDIT),
    referralReferrerCredit: defaulted(s, 'referralReferrerCredit', 0, MAX_REFERRAL_CREDIT),
    referralMonthlyCap: defaulted(s, 'referralMonthlyCap', 0, MAX_REFERRAL_MONTHLY_CAP),
    referralClawbackDays: defaulted(s, 'referralClawbackDays', 0, MAX_REFERRAL_CLAWBACK_DAYS),
  };
}

/** An integer setting added after the first version: absent (an older event) means its default. */
function defaulted(
  s: Record<string, unknown>,
  key: 'referralRefereeCredit' | 'referralReferrerCredit' | 'referralMonthlyCap' | 'referralClawbackDays',
  min: number,
  max: number,
): number {
  return requireIntegerInRange(s[key] ?? DEFAULT_TENANT_SETTINGS[key], `settings.${key}`, min, max);
}

/** An absolute http(s) URL (Stripe's Account Links take nothing else), or null / absent: not set. */
function optionalUrl(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_URL_CHARS) {
    validationFailed(`${field} must be an absolute http(s) URL of at most ${MAX_URL_CHARS} characters`, {
      field,
    });
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    validationFailed(`${field} must be an absolute http(s) URL`, { field });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    validationFailed(`${field} must be an http(s) URL`, { field });
  }
  return value;
}

const SETTINGS_KEYS: readonly (keyof TenantSettings)[] = [
  'commissionRateBps',
  'earningsHoldPeriodDays',
  'cancellationFreeWindowHours',
  'cancellationFeeBps',
  'holdExpiryDays',
  'topUpMin',
  'topUpMax',
  'payoutMin',
  'allowedCurrencies',
  'adjustmentApprovalThreshold',
  'adjustmentProposalExpiryHours',
  'payoutOnboardingReturnUrl',
  'payoutOnboardingRefreshUrl',
  'timeZone',
  'reconciliationDailyHourUtc',
  'referralRefereeCredit',
  'referralReferrerCredit',
  'referralMonthlyCap',
  'referralClawbackDays',
];

// ---------------------------------------------------------------------------------------------------
// Decider

export interface UpdateTenantSettings {
  type: 'UpdateTenantSettings';
  /** Only the fields to change; unknown fields are rejected. */
  patch: Partial<TenantSettings>;
  updatedAt: string;
}
export type TenantSettingsCommand = UpdateTenantSettings;

export const TENANT_SETTINGS_EVENTS = {
  /** The full settings in force after the change, and which of them changed. */
  TenantSettingsUpdated: strictObject({
    settings: StoredTenantSettingsSchema,
    changed: Type.Array(Type.Union(SETTINGS_KEYS.map((k) => Type.Literal(k))), { minItems: 1 }),
    updatedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type TenantSettingsEvent = EventsOf<typeof TENANT_SETTINGS_EVENTS>;
export type TenantSettingsUpdated = EventOf<typeof TENANT_SETTINGS_EVENTS, 'TenantSettingsUpdated'>;

export interface TenantSettingsState {
  settings: TenantSettings;
  /** Number of updates applied; 0 while the tenant runs on defaults. */
  version: number;
}

export const initialTenantSettingsState = (): TenantSettingsState => ({
  settings: defaultTenantSettings(),
  version: 0,
});

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function decideTenantSettings(
  command: TenantSettingsCommand,
  state: TenantSettingsState,
): TenantSettingsEvent[] {
  switch (command.type) {
    case 'UpdateTenantSettings': {
      const updatedAt = toIso(parseInstant(command.updatedAt, 'updatedAt'));
      const patch: unknown = command.patch;
      if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
        validationFailed('patch must be an object', { field: 'patch' });
      }
      const settings = validateTenantSettings({ ...state.settings, ...(patch as object) });
      const changed = SETTINGS_KEYS.filter((k) => !sameValue(settings[k], state.settings[k]));
      // Applying the settings already in force changes nothing and appends nothing.
      if (changed.length === 0) return [];
      return [{ type: 'TenantSettingsUpdated', data: { settings, changed, updatedAt } }];
    }
    default:
      throw new DomainError('validation_failed', 'unknown tenant settings command');
  }
}

export function evolveTenantSettings(
  state: TenantSettingsState,
  event: TenantSettingsEvent,
): TenantSettingsState {
  switch (event.type) {
    case 'TenantSettingsUpdated': {
      let settings: TenantSettings;
      try {
        settings = validateTenantSettings(event.data.settings);
      } catch (error) {
        invariant(false, `TenantSettingsUpdated carries invalid settings: ${(error as Error).message}`);
      }
      return { settings, version: state.version + 1 };
    }
  }
}

export const tenantSettingsDecider: Decider<TenantSettingsCommand, TenantSettingsEvent, TenantSettingsState> =
  {
    initialState: initialTenantSettingsState,
    decide: decideTenantSettings,
    evolve: evolveTenantSettings,
  };
