import { Type } from 'typebox';
import type { BillingSettingsService } from '../../commands/billingSettings.js';
import { errorResponses, IdempotencyHeaders } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * The tenant's billing settings (src/domain/billingSettings.ts): what its receipts, invoices and credit
 * notes print and the tax rates per document kind. Tenant admins change them; finance admins and
 * services read them.
 */
const strict = { additionalProperties: false } as const;
const Bps = Type.Integer({ minimum: 0, maximum: 10_000, description: 'basis points (1900 = 19%)' });
const fields = {
  legalName: Type.String({ minLength: 1, maxLength: 200 }),
  address: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 6 }),
  taxId: Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()]),
  locale: Type.String({ minLength: 2, maxLength: 35, description: 'BCP 47, e.g. en-US, de-DE' }),
  pricesIncludeTax: Type.Boolean(),
  taxRatesBps: Type.Object(
    {
      invoice: { ...Bps, description: 'tax on the platform commission (commission invoices, credit notes)' },
      receipt: { ...Bps, description: 'tax on what the platform sells on its own account' },
    },
    strict,
  ),
  commissionInvoicing: Type.Optional(
    Type.Union([Type.Literal('per_capture'), Type.Literal('monthly')], {
      description:
        'commission invoices to tutors: one per capture (default) or one per tutor per month, at month end in the tenant time zone',
    }),
  ),
};
const BillingSettingsSchema = Type.Object(fields, { ...strict, $id: 'BillingSettings' });
const BillingSettingsPatch = Type.Partial(Type.Object(fields, strict), { ...strict, minProperties: 1 });

export function billingSettingsRoutes(options: { billing: BillingSettingsService }): RouteModule {
  const { billing } = options;
  return async (app, { kit }) => {
    app.addSchema(BillingSettingsSchema);

    app.get(
      '/tenant/billing-settings',
      {
        config: { policy: [{ role: 'tenant_admin' }, { role: 'finance_admin' }, { role: 'service' }] },
        schema: {
          operationId: 'getBillingSettings',
          tags: ['tenant'],
          summary: 'The tenant’s billing settings: legal entity, address, tax id, locale, tax rates',
          response: { 200: Type.Ref('BillingSettings'), ...errorResponses() },
        },
      },
      async (request) => billing.get(kit.principal(request).tenantId),
    );

    app.put(
      '/tenant/billing-settings',
      {
        config: { policy: [{ role: 'tenant_admin' }] },
        schema: {
          operationId: 'updateBillingSettings',
          tags: ['tenant'],
          summary:
            'Change billing settings: documents issued and bookings placed after the change use them (existing bookings keep their tax)',
          headers: IdempotencyHeaders,
          body: BillingSettingsPatch,
          response: {
            200: Type.Object({ settings: Type.Ref('BillingSettings'), position: Type.String() }, strict),
            ...errorResponses(409, 413, 415, 422),
          },
        },
      },
      async (request) => {
        const result = await kit.run('updateBillingSettings', () =>
          billing.update(kit.commandContext(request), request.body),
        );
        return { settings: result.settings, position: String(result.position) };
      },
    );
  };
}
