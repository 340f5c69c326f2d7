import { Type } from '@sinclair/typebox';
import { accountPath, describeAccount, PLATFORM_ADJUSTMENTS, requireAccount } from './accounts.js';
import { type ClientMetadata, ClientMetadataSchema, parseClientMetadata } from './clientMetadata.js';
import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { assertAmount, assertCurrency } from './money.js';
import {
  type Actor,
  ActorSchema,
  AmountSchema,
  CurrencySchema,
  EntityIdSchema,
  InstantSchema,
  PositiveAmountSchema,
  SideSchema,
  strictObject,
  TextSchema,
} from './schema.js';
import {
  HOUR_MS,
  parseInstant,
  requireDirection,
  requireEntityId,
  requireFinanceAdmin,
  requireText,
  toIso,
  validationFailed,
} from './validate.js';

/**
 * Four eyes on manual adjustments: stream `adjustmentproposal-{t}.{proposalId}`, one proposal per
 * stream. A finance admin proposes an adjustment; it takes effect only when a second, different finance
 * admin approves it before it expires (the tenant's adjustmentProposalExpiryHours). Rejected or expired
 * proposals change no balance. Approval is an event here; the adjustment itself is then made through the
 * ordinary adjustment flow (ledgerService.adjust) with a key derived from the proposal, so it is the same
 * kind of entry in the same stream as a direct adjustment and happens exactly once.
 *
 * Every step carries its actor, so the audit trail reads: proposed by A at t1, approved by B at t2,
 * entry E (caused by the approval).
 */

export interface ProposeAdjustment {
  type: 'ProposeAdjustment';
  proposalId: string;
  account: string;
  direction: 'debit' | 'credit';
  amount: number;
  currency: string;
  reason: string;
  actor: Actor;
  proposedAt: string;
  /** Tenant settings in force: the proposal records them. */
  expiryHours: number;
  threshold: number;
  allowedCurrencies: readonly string[];
  /** The proposer's metadata: it goes with the proposal onto the adjustment an approval makes. */
  clientMetadata?: ClientMetadata;
}

export interface ApproveAdjustment {
  type: 'ApproveAdjustment';
  actor: Actor;
  approvedAt: string;
}

export interface RejectAdjustment {
  type: 'RejectAdjustment';
  actor: Actor;
  reason: string;
  rejectedAt: string;
}

export type AdjustmentProposalCommand = ProposeAdjustment | ApproveAdjustment | RejectAdjustment;

const ProposedAdjustmentFields = {
  proposalId: EntityIdSchema,
  account: Type.String({ minLength: 1, maxLength: 300 }),
  direction: SideSchema,
  amount: PositiveAmountSchema,
  currency: CurrencySchema,
  reason: TextSchema(),
  proposedBy: ActorSchema,
  /** The proposer's metadata (clientMetadata.ts); absent when none, and on proposals made before it. */
  clientMetadata: Type.Optional(ClientMetadataSchema),
};

export const ADJUSTMENT_PROPOSAL_EVENTS = {
  /** Proposed by a finance admin; takes effect only once a second one approves it before `expiresAt`. */
  AdjustmentProposed: strictObject({
    ...ProposedAdjustmentFields,
    proposedAt: InstantSchema,
    expiresAt: InstantSchema,
    /** The tenant's adjustmentApprovalThreshold when it was proposed. */
    threshold: AmountSchema,
  }),
  /** Approved by a second finance admin: the adjustment is then made (caused by this event). */
  AdjustmentApproved: strictObject({
    ...ProposedAdjustmentFields,
    approvedBy: ActorSchema,
    approvedAt: InstantSchema,
  }),
  AdjustmentRejected: strictObject({
    proposalId: EntityIdSchema,
    rejectedBy: ActorSchema,
    reason: TextSchema(),
    rejectedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type AdjustmentProposalEvent = EventsOf<typeof ADJUSTMENT_PROPOSAL_EVENTS>;
export type AdjustmentProposed = EventOf<typeof ADJUSTMENT_PROPOSAL_EVENTS, 'AdjustmentProposed'>;
export type AdjustmentApproved = EventOf<typeof ADJUSTMENT_PROPOSAL_EVENTS, 'AdjustmentApproved'>;
export type AdjustmentRejected = EventOf<typeof ADJUSTMENT_PROPOSAL_EVENTS, 'AdjustmentRejected'>;

export type ProposalStatus = 'none' | 'proposed' | 'approved' | 'rejected';

export interface AdjustmentProposalState {
  status: ProposalStatus;
  proposal: AdjustmentProposed['data'] | null;
  approvedBy: Actor | null;
  rejectedBy: Actor | null;
}

export const initialAdjustmentProposalState = (): AdjustmentProposalState => ({
  status: 'none',
  proposal: null,
  approvedBy: null,
  rejectedBy: null,
});

/** A proposal's status as of `nowMs`: an undecided one past its expiry has expired. */
export function proposalStatusAt(state: AdjustmentProposalState, nowMs: number): ProposalStatus | 'expired' {
  if (state.status === 'proposed' && state.proposal && nowMs >= Date.parse(state.proposal.expiresAt)) {
    return 'expired';
  }
  return state.status;
}

function pending(state: AdjustmentProposalState, atMs: number, what: string): AdjustmentProposed['data'] {
  const status = proposalStatusAt(state, atMs);
  if (status === 'none' || !state.proposal) throw new DomainError('not_found', 'no such adjustment proposal');
  if (status !== 'proposed') {
    throw new DomainError('invalid_state', `the proposal is ${status}: it can no longer be ${what}`, {
      status,
      ...(status === 'expired' ? { expiresAt: state.proposal.expiresAt } : {}),
    });
  }
  return state.proposal;
}

export function decideAdjustmentProposal(
  command: AdjustmentProposalCommand,
  state: AdjustmentProposalState,
): AdjustmentProposalEvent[] {
  switch (command.type) {
    case 'ProposeAdjustment': {
      const proposalId = requireEntityId(command.proposalId, 'proposalId');
      const ref = requireAccount(command.account);
      const direction = requireDirection(command.direction);
      const amount = assertAmount(command.amount);
      const currency = assertCurrency(command.currency);
      const reason = requireText(command.reason, 'reason');
      const proposedBy = requireFinanceAdmin(command.actor);
      const proposedAtMs = parseInstant(command.proposedAt, 'proposedAt');
      const clientMetadata = parseClientMetadata(command.clientMetadata);
      if (!command.allowedCurrencies.includes(currency)) {
        validationFailed(`currency ${currency} is not allowed for this tenant`, { field: 'currency' });
      }
      const account = accountPath(ref);
      // What the adjustment flow would refuse for any amount is refused now, not at approval.
      if (account === PLATFORM_ADJUSTMENTS) {
        validationFailed(`${PLATFORM_ADJUSTMENTS} is the other side of every adjustment`, {
          field: 'account',
        });
      }
      if (ref.kind === 'tutor_earnings_pending') {
        validationFailed('tutor pending earnings are tracked per booking and are not adjusted by hand', {
          field: 'account',
        });
      }
      invariant(describeAccount(ref).path === account, 'account paths round-trip');
      if (state.status !== 'none') {
        throw new DomainError('invalid_state', `proposal ${proposalId} already exists`, { proposalId });
      }
      invariant(
        Number.isSafeInteger(command.expiryHours) && command.expiryHours >= 1,
        'expiryHours must be a positive integer',
      );
      return [
        {
          type: 'AdjustmentProposed',
          data: {
            proposalId,
            account,
            direction,
            amount,
            currency,
            reason,
            proposedBy,
            ...(clientMetadata ? { clientMetadata } : {}),
            proposedAt: toIso(proposedAtMs),
            expiresAt: toIso(proposedAtMs + command.expiryHours * HOUR_MS),
            threshold: command.threshold,
          },
        },
      ];
    }
    case 'ApproveAdjustment': {
      const approvedBy = requireFinanceAdmin(command.actor);
      const approvedAtMs = parseInstant(command.approvedAt, 'approvedAt');
      const p = pending(state, approvedAtMs, 'approved');
      if (approvedBy.id === p.proposedBy.id) {
        throw new DomainError(
          'forbidden',
          'a proposal is approved by another finance admin than its proposer',
          {
            proposedBy: p.proposedBy.id,
          },
        );
      }
      return [
        {
          type: 'AdjustmentApproved',
          data: {
            proposalId: p.proposalId,
            account: p.account,
            direction: p.direction,
            amount: p.amount,
            currency: p.currency,
            reason: p.reason,
            proposedBy: p.proposedBy,
            ...(p.clientMetadata ? { clientMetadata: p.clientMetadata } : {}),
            approvedBy,
            approvedAt: toIso(approvedAtMs),
          },
        },
      ];
    }
    case 'RejectAdjustment': {
      const rejectedBy = requireFinanceAdmin(command.actor);
      const rejectedAtMs = parseInstant(command.rejectedAt, 'rejectedAt');
      const reason = requireText(command.reason, 'reason');
      const p = pending(state, rejectedAtMs, 'rejected');
      return [
        {
          type: 'AdjustmentRejected',
          data: { proposalId: p.proposalId, rejectedBy, reason, rejectedAt: toIso(rejectedAtMs) },
        },
      ];
    }
    default:
      throw new DomainError('validation_failed', 'unknown adjustment proposal command');
  }
}

export function evolveAdjustmentProposal(
  state: AdjustmentProposalState,
  event: AdjustmentProposalEvent,
): AdjustmentProposalState {
  switch (event.type) {
    case 'AdjustmentProposed':
      invariant(state.status === 'none', 'a proposal stream holds one proposal');
      return { ...state, status: 'proposed', proposal: event.data };
    case 'AdjustmentApproved':
      invariant(state.status === 'proposed', 'only a pending proposal is approved');
      return { ...state, status: 'approved', approvedBy: event.data.approvedBy };
    case 'AdjustmentRejected':
      invariant(state.status === 'proposed', 'only a pending proposal is rejected');
      return { ...state, status: 'rejected', rejectedBy: event.data.rejectedBy };
  }
}

export const adjustmentProposalDecider: Decider<
  AdjustmentProposalCommand,
  AdjustmentProposalEvent,
  AdjustmentProposalState
> = {
  initialState: initialAdjustmentProposalState,
  decide: decideAdjustmentProposal,
  evolve: evolveAdjustmentProposal,
};
