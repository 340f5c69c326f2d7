import type { Decider, DomainEvent } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { BPS_DENOMINATOR, isKnownCurrency } from './money.js';
import { parseInstant, requireIntegerInRange, toIso, validationFailed } from './validate.js';

/**
 * Per-tenant money policy, one stream per tenant: `tenant-{t}.settings`. Every change appends the full
 * settings in force after it, so a reader needs only the last event. Bookings snapshot the part they
 * need (BookingPolicy) when placed, so later changes never alter an existing booking.
 *
 * Same shape as TenantSettings in src/commands/ledgerCommands.ts (the domain imports nothing outside it).
 * Amounts (topUpMin, topUpMax, payoutMin) are minor units and apply to every allowed currency.
 */
export interface TenantSettings {
  /** Platform commission on completed bookings, basis points; < 10000 so the tutor always earns something. */
  commissionRateBps: number;
  /** Days a completed booking's tutor share stays pending before it becomes withdrawable. */
  earningsHoldPeriodDays: number;
  /** Cancelling at least this many hours before the session is free. */
  cancellationFreeWindowHours: number;
  /** Fee charged for a late cancellation, in basis points of the price. */
  cancellationFeeBps: number;
  /** A hold not completed within this many days after the scheduled time is released (expired). */
  holdExpiryDays: number;
  topUpMin: number;
  topUpMax: number;
  payoutMin: number;
  allowedCurrencies: string[];
}

/**
 * Defaults (DESIGN.md and issue 4): 20% commission, 7-day earnings hold, free cancellation until 24 h
 * before, 50% late-cancellation fee (half the price: the tutor reserved the slot), holds expire 7 days
 * after the scheduled time; top-ups 5.00..10,000.00, payouts from 10.00 (in 2-decimal currencies).
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
});

export const defaultTenantSettings = (): TenantSettings => ({
  ...DEFAULT_TENANT_SETTINGS,
  allowedCurrencies: [...DEFAULT_TENANT_SETTINGS.allowedCurrencies],
});

/** The part of the settings a booking snapshots when it is placed. */
export interface BookingPolicy {
  commissionRateBps: number;
  cancellationFreeWindowHours: number;
  cancellationFeeBps: number;
  holdExpiryDays: number;
  earningsHoldPeriodDays: number;
}

export function bookingPolicyFrom(settings: TenantSettings): BookingPolicy {
  return {
    commissionRateBps: settings.commissionRateBps,
    cancellationFreeWindowHours: settings.cancellationFreeWindowHours,
    cancellationFeeBps: settings.cancellationFeeBps,
    holdExpiryDays: settings.holdExpiryDays,
    earningsHoldPeriodDays: settings.earningsHoldPeriodDays,
  };
}

const MAX_DAYS = 365;
const MAX_WINDOW_HOURS = 24 * 90;
const MAX_ALLOWED_CURRENCIES = 32;

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
  };
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
  return { ...policy, topUpMin, topUpMax, payoutMin, allowedCurrencies: [...(currencies as string[])] };
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

export type TenantSettingsUpdated = DomainEvent<
  'TenantSettingsUpdated',
  { settings: TenantSettings; changed: (keyof TenantSettings)[]; updatedAt: string }
>;
export type TenantSettingsEvent = TenantSettingsUpdated;

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
