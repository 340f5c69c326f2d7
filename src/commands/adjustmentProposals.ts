import {
  type AdjustmentProposalState,
  adjustmentProposalDecider,
  proposalStatusAt,
} from '../domain/adjustmentProposal.js';
import { DomainError } from '../domain/errors.js';
import { decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import type { Money } from '../domain/money.js';
import { parseMoney } from '../domain/money.js';
import { adjustmentProposalStream } from '../domain/streams.js';
import { requireEntityId } from '../domain/validate.js';
import type { CommandContext, CommandResult } from './context.js';
import { type Trigger, triggerOf } from './flowContext.js';
import type { LedgerService } from './ledgerService.js';
import { stableHash } from './stableHash.js';

/**
 * Four-eyes adjustments (src/domain/adjustmentProposal.ts): propose, approve, reject. An approval is
 * carried out through the ordinary adjustment flow (LedgerService.adjust) under an idempotency key derived
 * from the proposal, caused by the approval event: the entry lands in the same stream as a direct
 * adjustment would, exactly once, whether the approving request finishes it or the process manager does
 * (AdjustmentApproved is a flow trigger, processManagers.ts).
 */
export interface ProposalView {
  proposalId: string;
  status: 'proposed' | 'approved' | 'rejected' | 'expired';
  account: string;
  direction: 'debit' | 'credit';
  amount: Money;
  reason: string;
  proposedBy: { id: string; role: string };
  proposedAt: string;
  expiresAt: string;
  /** The tenant's threshold when it was proposed. */
  threshold: number;
  approvedBy: { id: string; role: string } | null;
  rejectedBy: { id: string; role: string } | null;
}

export interface AdjustmentProposalInput {
  account: string;
  direction: 'debit' | 'credit';
  amount: Money;
  reason: string;
}

/** The idempotency key of the adjustment an approved proposal makes. */
export const approvedAdjustmentKey = (proposalId: string) => `adjustment-proposal:${proposalId}`;

export class AdjustmentProposals {
  constructor(
    private readonly service: LedgerService,
    private readonly clock: () => Date,
  ) {}

  private now(): string {
    return this.clock().toISOString();
  }

  async propose(
    ctx: CommandContext,
    input: AdjustmentProposalInput,
  ): Promise<CommandResult & { proposal: ProposalView }> {
    const t = ctx.tenantId;
    const settings = await this.service.steps.settingsAsOf(t);
    const amount = parseMoney(input.amount, { allowedCurrencies: settings.allowedCurrencies });
    const proposalId = deterministicId('adjustment-proposal', t, ctx.idempotencyKey);
    const result = await this.service.handler.handle(
      adjustmentProposalDecider,
      adjustmentProposalStream(t, proposalId),
      {
        type: 'ProposeAdjustment',
        proposalId,
        account: input.account,
        direction: input.direction,
        amount: amount.amount,
        currency: amount.currency,
        reason: input.reason,
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        proposedAt: this.now(),
        expiryHours: settings.adjustmentProposalExpiryHours,
        threshold: settings.adjustmentApprovalThreshold,
        allowedCurrencies: settings.allowedCurrencies,
        ...(ctx.clientMetadata ? { clientMetadata: ctx.clientMetadata } : {}),
      },
      ctx,
      { commandType: 'ProposeAdjustment', payloadHash: stableHash({ op: 'propose', input }) },
    );
    return { position: result.position, proposal: this.view(result.state) };
  }

  async approve(
    ctx: CommandContext,
    proposalId: string,
  ): Promise<CommandResult & { proposal: ProposalView; entryId: string }> {
    const id = requireEntityId(proposalId, 'proposalId');
    const stream = adjustmentProposalStream(ctx.tenantId, id);
    await this.existing(stream);
    const result = await this.service.handler.handle(
      adjustmentProposalDecider,
      stream,
      {
        type: 'ApproveAdjustment',
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        approvedAt: this.now(),
      },
      ctx,
      { commandType: 'ApproveAdjustment', payloadHash: stableHash({ op: 'approve', proposalId: id }) },
    );
    // A retried approval (already approved) appends nothing: the adjustment is finished from the stored
    // approval event instead.
    const adjusted = await carryOutApprovedProposal(
      this.service,
      result.events.length > 0 ? triggerOf(result, 'AdjustmentApproved') : await this.storedApproval(stream),
    );
    return { position: adjusted.position, entryId: adjusted.entryId, proposal: this.view(result.state) };
  }

  async reject(
    ctx: CommandContext,
    proposalId: string,
    reason: string,
  ): Promise<CommandResult & { proposal: ProposalView }> {
    const id = requireEntityId(proposalId, 'proposalId');
    const stream = adjustmentProposalStream(ctx.tenantId, id);
    await this.existing(stream);
    const result = await this.service.handler.handle(
      adjustmentProposalDecider,
      stream,
      {
        type: 'RejectAdjustment',
        actor: { id: ctx.actor.id, role: ctx.actor.role },
        reason,
        rejectedAt: this.now(),
      },
      ctx,
      { commandType: 'RejectAdjustment', payloadHash: stableHash({ op: 'reject', proposalId: id, reason }) },
    );
    return { position: result.position, proposal: this.view(result.state) };
  }

  async get(tenantId: string, proposalId: string): Promise<ProposalView | null> {
    const { state } = await this.service.handler.load(
      adjustmentProposalDecider,
      adjustmentProposalStream(tenantId, requireEntityId(proposalId, 'proposalId')),
    );
    return state.status === 'none' ? null : this.view(state);
  }

  private async existing(stream: string): Promise<AdjustmentProposalState> {
    const { state } = await this.service.handler.load(adjustmentProposalDecider, stream);
    if (state.status === 'none') throw new DomainError('not_found', 'no such adjustment proposal');
    return state;
  }

  /** The approval event of an approved proposal (a proposal stream holds at most two events). */
  private async storedApproval(stream: string): Promise<Trigger<'AdjustmentApproved'>> {
    const events = await this.service.store.readStream(stream, { maxCount: 2 });
    const approved = events.find((e) => e.type === 'AdjustmentApproved');
    if (!approved) throw new DomainError('invalid_state', 'the proposal is not approved');
    return decodeEventOf(approved, ['AdjustmentApproved']);
  }

  private view(state: AdjustmentProposalState): ProposalView {
    const p = state.proposal;
    if (!p) throw new DomainError('not_found', 'no such adjustment proposal');
    const status = proposalStatusAt(state, this.clock().getTime());
    return {
      proposalId: p.proposalId,
      status: status === 'none' ? 'proposed' : status,
      account: p.account,
      direction: p.direction,
      amount: { amount: p.amount, currency: p.currency },
      reason: p.reason,
      proposedBy: p.proposedBy,
      proposedAt: p.proposedAt,
      expiresAt: p.expiresAt,
      threshold: p.threshold,
      approvedBy: state.approvedBy,
      rejectedBy: state.rejectedBy,
    };
  }
}

/**
 * AdjustmentApproved -> the adjustment, as the approver, caused by the approval, keyed by the proposal
 * (so the command path and the process manager make it once). An adjustment the ledger refuses now
 * (say the wallet no longer holds enough for a debit) fails loudly: the approval stays recorded and
 * finance sees the refusal, rather than a quietly dropped adjustment.
 */
export async function carryOutApprovedProposal(
  service: LedgerService,
  trigger: Trigger<'AdjustmentApproved'>,
): Promise<CommandResult & { entryId: string }> {
  const d = trigger.data;
  return service.adjust(
    {
      tenantId: trigger.tenantId,
      actor: d.approvedBy,
      idempotencyKey: approvedAdjustmentKey(d.proposalId),
      correlationId: trigger.metadata.correlationId,
      causationId: trigger.id,
      ...(d.clientMetadata ? { clientMetadata: d.clientMetadata } : {}),
    },
    {
      account: d.account,
      direction: d.direction,
      amount: { amount: d.amount, currency: d.currency },
      reason: `${d.reason} (proposal ${d.proposalId}, four eyes)`,
    },
    { approvedProposal: d.proposalId },
  );
}
