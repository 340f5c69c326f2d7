import {
  type BillingSettings,
  billingSettingsDecider,
  commissionTaxOf,
  defaultBillingSettings,
} from '../domain/billingSettings.js';
import { isTenantId } from '../domain/ids.js';
import { billingStream, settingsStream } from '../domain/streams.js';
import { commissionTaxFits } from '../domain/tax.js';
import { tenantSettingsDecider } from '../domain/tenantSettings.js';
import { validationFailed } from '../domain/validate.js';
import type { CommandHandler } from './commandHandler.js';
import type { CommandContext, CommandResult } from './context.js';
import { stableHash } from './stableHash.js';

/**
 * The tenant's billing settings (src/domain/billingSettings.ts): read, and changed by a tenant admin.
 * A change applies to documents issued and bookings placed after it; existing bookings keep the tax
 * they snapshotted.
 */
export class BillingSettingsService {
  constructor(
    private readonly handler: CommandHandler,
    private readonly clock: () => Date,
  ) {}

  async get(tenantId: string): Promise<BillingSettings> {
    if (!isTenantId(tenantId)) validationFailed('invalid tenant id', { field: 'tenantId' });
    const { state } = await this.handler.load(billingSettingsDecider, billingStream(tenantId));
    return state.settings ?? defaultBillingSettings(tenantId);
  }

  async update(
    ctx: CommandContext,
    patch: Partial<BillingSettings>,
  ): Promise<CommandResult & { settings: BillingSettings }> {
    const stream = billingStream(ctx.tenantId);
    const command = {
      type: 'UpdateBillingSettings' as const,
      tenantId: ctx.tenantId,
      patch,
      updatedAt: this.clock().toISOString(),
    };
    // An exclusive tax on top of the commission must leave the tutor something of every price, with
    // the commission rate in force (booking placement checks it again against its own snapshot).
    const [{ state: tenant }, { state: current }] = await Promise.all([
      this.handler.load(tenantSettingsDecider, settingsStream(ctx.tenantId)),
      this.handler.load(billingSettingsDecider, stream),
    ]);
    for (const event of billingSettingsDecider.decide(command, current)) {
      if (!commissionTaxFits(tenant.settings.commissionRateBps, commissionTaxOf(event.data.settings))) {
        validationFailed(
          `a commission of ${tenant.settings.commissionRateBps} bps plus tax on top of it would exceed the price`,
          { field: 'taxRatesBps.invoice' },
        );
      }
    }
    const result = await this.handler.handle(billingSettingsDecider, stream, command, ctx, {
      commandType: 'UpdateBillingSettings',
      payloadHash: stableHash({ op: 'updateBillingSettings', patch }),
    });
    return {
      position: result.position,
      settings: result.state.settings ?? defaultBillingSettings(ctx.tenantId),
    };
  }
}
