import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TENANT_SETTINGS,
  defaultTenantSettings,
  tenantSettingsDecider,
  type UpdateTenantSettings,
  validateTenantSettings,
} from '../../src/domain/tenantSettings.js';
import { foldEvents, history, spec } from './spec.js';

const NOW = '2026-04-01T10:00:00.000Z';
const update = (patch: Record<string, unknown>): UpdateTenantSettings => ({
  type: 'UpdateTenantSettings',
  patch,
  updatedAt: NOW,
});

describe('tenant settings', () => {
  it('defaults to the documented policy', () => {
    expect(defaultTenantSettings()).toEqual({
      commissionRateBps: 2000,
      earningsHoldPeriodDays: 7,
      cancellationFreeWindowHours: 24,
      cancellationFeeBps: 5000,
      holdExpiryDays: 7,
      topUpMin: 500,
      topUpMax: 1_000_000,
      payoutMin: 1000,
      allowedCurrencies: ['usd', 'eur', 'gbp'],
    });
    expect(tenantSettingsDecider.initialState()).toEqual({ settings: defaultTenantSettings(), version: 0 });
    expect(Object.isFrozen(DEFAULT_TENANT_SETTINGS)).toBe(true);
  });

  it('appends the full settings after a change, listing what changed', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when(update({ commissionRateBps: 1500, allowedCurrencies: ['usd', 'jpy'] }))
      .thenEmits([
        {
          type: 'TenantSettingsUpdated',
          data: {
            settings: {
              ...defaultTenantSettings(),
              commissionRateBps: 1500,
              allowedCurrencies: ['usd', 'jpy'],
            },
            changed: ['commissionRateBps', 'allowedCurrencies'],
            updatedAt: NOW,
          },
        },
      ]);
  });

  it('appends nothing when nothing changes', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when(update({ commissionRateBps: 2000 }))
      .thenEmits([]);
    spec(tenantSettingsDecider).given([]).when(update({})).thenEmits([]);
  });

  it('folds to the last settings', () => {
    const events = history(tenantSettingsDecider, [
      update({ payoutMin: 2000 }),
      update({ holdExpiryDays: 3 }),
    ]);
    expect(foldEvents(tenantSettingsDecider, events)).toMatchObject({
      version: 2,
      settings: { payoutMin: 2000, holdExpiryDays: 3 },
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['commission of 100%', { commissionRateBps: 10_000 }],
    ['negative commission', { commissionRateBps: -1 }],
    ['fractional commission', { commissionRateBps: 12.5 }],
    ['fee above 100%', { cancellationFeeBps: 10_001 }],
    ['negative hold period', { earningsHoldPeriodDays: -1 }],
    ['hold period past a year', { earningsHoldPeriodDays: 366 }],
    ['zero hold expiry', { holdExpiryDays: 0 }],
    ['free window as a string', { cancellationFreeWindowHours: '24' }],
    ['zero top-up minimum', { topUpMin: 0 }],
    ['max below min', { topUpMin: 5000, topUpMax: 4999 }],
    ['unsafe top-up max', { topUpMax: 2 ** 60 }],
    ['zero payout minimum', { payoutMin: 0 }],
    ['no currencies', { allowedCurrencies: [] }],
    ['an unknown currency', { allowedCurrencies: ['usd', 'abc'] }],
    ['an uppercase currency', { allowedCurrencies: ['USD'] }],
    ['duplicate currencies', { allowedCurrencies: ['usd', 'usd'] }],
    ['an unknown setting', { vatRateBps: 2000 }],
  ])('rejects %s', (_why, patch) => {
    spec(tenantSettingsDecider).given([]).when(update(patch)).thenFails('validation_failed');
  });

  it('rejects a bad timestamp and a non-object patch', () => {
    spec(tenantSettingsDecider)
      .given([])
      .when({ type: 'UpdateTenantSettings', patch: { payoutMin: 5 }, updatedAt: 'now' })
      .thenFails('validation_failed');
    spec(tenantSettingsDecider)
      .given([])
      .when({ type: 'UpdateTenantSettings', patch: [] as never, updatedAt: NOW })
      .thenFails('validation_failed');
  });

  it('validates complete settings objects', () => {
    expect(validateTenantSettings(defaultTenantSettings())).toEqual(defaultTenantSettings());
    const { payoutMin: _omitted, ...missing } = defaultTenantSettings();
    expect(() => validateTenantSettings(missing)).toThrow(/payoutMin/);
  });
});
