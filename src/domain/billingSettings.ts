import { type Static, Type } from '@sinclair/typebox';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { BPS_DENOMINATOR } from './money.js';
import { InstantSchema, Nullable, strictObject, TextSchema } from './schema.js';
import type { TaxRate } from './tax.js';
import { parseInstant, toIso, validationFailed } from './validate.js';

/**
 * The tenant's billing settings, one stream per tenant: `billing-{t}.settings`. What its documents
 * print (legal entity, address, tax id, locale) and the tax rates per document kind, prices inclusive or
 * exclusive of tax. Kept apart from the money policy (tenantSettings.ts) on purpose: a tenant that never
 * sets them writes nothing new, so every existing flow's stored events stay exactly what they were.
 *
 * Tax rates: `invoice` applies to the platform's commission (booked to platform:tax:payable at capture
 * and printed on the commission invoice; bookings snapshot it when placed, like the commission rate);
 * `receipt` applies to what the platform sells on its own account (subscriptions), not to tutoring
 * sessions, which the platform collects for the tutor. 0 means no tax.
 */
const MAX_ADDRESS_LINES = 6;

export const COMMISSION_INVOICING = ['per_capture', 'monthly'] as const;
export type CommissionInvoicing = (typeof COMMISSION_INVOICING)[number];

/** The commission invoicing in force under these settings (absent: per capture). */
export const commissionInvoicingOf = (settings: BillingSettings | null): CommissionInvoicing =>
  settings?.commissionInvoicing ?? 'per_capture';
const LOCALE_PATTERN = '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$';

export const BillingSettingsSchema = strictObject({
  legalName: TextSchema(200),
  address: Type.Array(TextSchema(200), { maxItems: MAX_ADDRESS_LINES }),
  taxId: Nullable(TextSchema(64)),
  /** BCP 47 locale for amounts and dates on documents. */
  locale: Type.String({ minLength: 2, maxLength: 35, pattern: LOCALE_PATTERN }),
  pricesIncludeTax: Type.Boolean(),
  taxRatesBps: strictObject({
    invoice: Type.Integer({ minimum: 0, maximum: BPS_DENOMINATOR }),
    receipt: Type.Integer({ minimum: 0, maximum: BPS_DENOMINATOR }),
  }),
  /**
   * How the platform invoices tutors for its commission: one invoice per capture (the default, and what
   * an absent value means, so settings stored before this one read as before), or one invoice per tutor
   * per month and currency, issued at the end of the month in the tenant's time zone
   * (src/documents/monthlyCommission.ts). Applies to captures from the log position it is set at.
   */
  commissionInvoicing: Type.Optional(Type.Union(COMMISSION_INVOICING.map((m) => Type.Literal(m)))),
});
export type BillingSettings = Static<typeof BillingSettingsSchema>;

export const defaultBillingSettings = (tenantId: string): BillingSettings => ({
  legalName: tenantId,
  address: [],
  taxId: null,
  locale: 'en-US',
  pricesIncludeTax: false,
  taxRatesBps: { invoice: 0, receipt: 0 },
});

/** The tax a booking placed now snapshots for its commission; undefined when none applies. */
export function commissionTaxOf(settings: BillingSettings): TaxRate | undefined {
  return settings.taxRatesBps.invoice > 0
    ? { rateBps: settings.taxRatesBps.invoice, inclusive: settings.pricesIncludeTax }
    : undefined;
}

function isLocale(value: string): boolean {
  try {
    return Intl.getCanonicalLocales(value).length === 1;
  } catch {
    return false;
  }
}

const text = (value: unknown, field: string, max: number): string => {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > max) {
    validationFailed(`${field} must be 1-${max} characters`, { field });
  }
  return value;
};
const bps = (value: unknown, field: string): number => {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > BPS_DENOMINATOR) {
    validationFailed(`${field} must be an integer from 0 to ${BPS_DENOMINATOR} (basis points)`, { field });
  }
  return value as number;
};

/** Validates complete billing settings. */
export function validateBillingSettings(value: unknown): BillingSettings {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    validationFailed('billing settings must be an object', { field: 'settings' });
  }
  const s = value as Record<string, unknown>;
  const known = [
    'legalName',
    'address',
    'taxId',
    'locale',
    'pricesIncludeTax',
    'taxRatesBps',
    'commissionInvoicing',
  ];
  const unknownKeys = Object.keys(s).filter((k) => !known.includes(k));
  if (unknownKeys.length > 0)
    validationFailed(`unknown settings: ${unknownKeys.join(', ')}`, { fields: unknownKeys });
  const address = s.address;
  if (!Array.isArray(address) || address.length > MAX_ADDRESS_LINES) {
    validationFailed(`address must be at most ${MAX_ADDRESS_LINES} lines`, { field: 'address' });
  }
  const locale = text(s.locale, 'locale', 35);
  if (!new RegExp(LOCALE_PATTERN).test(locale) || !isLocale(locale)) {
    validationFailed('locale must be a BCP 47 language tag such as en-US or de-DE', { field: 'locale' });
  }
  if (typeof s.pricesIncludeTax !== 'boolean') {
    validationFailed('pricesIncludeTax must be true or false', { field: 'pricesIncludeTax' });
  }
  const rates = s.taxRatesBps;
  if (rates === null || typeof rates !== 'object' || Array.isArray(rates)) {
    validationFailed('taxRatesBps must be an object {invoice, receipt}', { field: 'taxRatesBps' });
  }
  const r = rates as Record<string, unknown>;
  const extra = Object.keys(r).filter((k) => k !== 'invoice' && k !== 'receipt');
  if (extra.length > 0)
    validationFailed(`unknown document kinds in taxRatesBps: ${extra.join(', ')}`, { field: 'taxRatesBps' });
  const invoicing = s.commissionInvoicing;
  if (invoicing !== undefined && !(COMMISSION_INVOICING as readonly unknown[]).includes(invoicing)) {
    validationFailed(`commissionInvoicing must be one of ${COMMISSION_INVOICING.join(', ')}`, {
      field: 'commissionInvoicing',
    });
  }
  return {
    legalName: text(s.legalName, 'legalName', 200),
    address: (address as unknown[]).map((line, i) => text(line, `address[${i}]`, 200)),
    taxId: s.taxId === null ? null : text(s.taxId, 'taxId', 64),
    locale: Intl.getCanonicalLocales(locale)[0]!,
    pricesIncludeTax: s.pricesIncludeTax as boolean,
    taxRatesBps: {
      invoice: bps(r.invoice, 'taxRatesBps.invoice'),
      receipt: bps(r.receipt, 'taxRatesBps.receipt'),
    },
    // Only when set: settings that never name it stay byte for byte what they were.
    ...(invoicing !== undefined ? { commissionInvoicing: invoicing as CommissionInvoicing } : {}),
  };
}

export interface UpdateBillingSettings {
  type: 'UpdateBillingSettings';
  tenantId: string;
  /** Only the fields to change. */
  patch: Partial<BillingSettings>;
  updatedAt: string;
}
export type BillingSettingsCommand = UpdateBillingSettings;

export const BILLING_SETTINGS_EVENTS = {
  /** The full billing settings in force after the change. */
  BillingSettingsUpdated: strictObject({ settings: BillingSettingsSchema, updatedAt: InstantSchema }),
} as const satisfies EventSchemas;

export type BillingSettingsEvent = EventsOf<typeof BILLING_SETTINGS_EVENTS>;
export type BillingSettingsUpdated = EventOf<typeof BILLING_SETTINGS_EVENTS, 'BillingSettingsUpdated'>;

export interface BillingSettingsState {
  /** null: never set (the defaults apply). */
  settings: BillingSettings | null;
}

export const initialBillingSettingsState = (): BillingSettingsState => ({ settings: null });

export function decideBillingSettings(
  command: BillingSettingsCommand,
  state: BillingSettingsState,
): BillingSettingsEvent[] {
  if (command.type !== 'UpdateBillingSettings') throw new DomainError('validation_failed', 'unknown command');
  const updatedAt = toIso(parseInstant(command.updatedAt, 'updatedAt'));
  const patch: unknown = command.patch;
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    validationFailed('patch must be an object', { field: 'patch' });
  }
  const current = state.settings ?? defaultBillingSettings(command.tenantId);
  const settings = validateBillingSettings({ ...current, ...(patch as object) });
  if (state.settings !== null && JSON.stringify(settings) === JSON.stringify(state.settings)) return [];
  return [{ type: 'BillingSettingsUpdated', data: { settings, updatedAt } }];
}

export function evolveBillingSettings(
  _state: BillingSettingsState,
  event: BillingSettingsEvent,
): BillingSettingsState {
  let settings: BillingSettings;
  try {
    settings = validateBillingSettings(event.data.settings);
  } catch (error) {
    invariant(false, `BillingSettingsUpdated carries invalid settings: ${(error as Error).message}`);
  }
  return { settings };
}

export const billingSettingsDecider: Decider<
  BillingSettingsCommand,
  BillingSettingsEvent,
  BillingSettingsState
> = {
  initialState: initialBillingSettingsState,
  decide: decideBillingSettings,
  evolve: evolveBillingSettings,
};
