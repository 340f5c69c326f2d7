import { Type } from '@fastify/type-provider-typebox';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { backdatingOf, instantParam } from '../requestValues.js';
import {
  AdjustmentBody,
  AdjustmentCreated,
  BookingBody,
  BookingChanged,
  CancelBody,
  CompleteBody,
  DueTasksBody,
  DueTasksOut,
  EntityId,
  errorResponses,
  IdempotencyHeaders,
  PayoutBody,
  PayoutCreated,
  RefundBody,
  RefundCreated,
  SettingsChanged,
  SettingsPatch,
  TopUpBody,
  TopUpCreated,
} from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/** Commands: every money-moving route requires an Idempotency-Key and has the stricter rate limit. */
const policies = {
  topUp: [{ role: 'student', own: { kind: 'param', name: 'studentId' } }, { role: 'service' }],
  placeBooking: [{ role: 'student', own: { kind: 'body', field: 'studentId' } }, { role: 'service' }],
  completeBooking: [
    { role: 'tutor', own: { kind: 'booking', param: 'bookingId', field: 'tutorId' } },
    { role: 'service' },
  ],
  cancelBooking: [
    { role: 'student', own: { kind: 'booking', param: 'bookingId', field: 'studentId' } },
    { role: 'tutor', own: { kind: 'booking', param: 'bookingId', field: 'tutorId' } },
    { role: 'service' },
  ],
  refundBooking: [{ role: 'finance_admin' }, { role: 'service' }],
  requestPayout: [{ role: 'tutor', own: { kind: 'param', name: 'tutorId' } }, { role: 'service' }],
  adjust: [{ role: 'finance_admin' }],
  updateSettings: [{ role: 'tenant_admin' }],
  runDueTasks: [{ role: 'service' }],
} satisfies Record<string, Policy>;

const money = (policy: Policy) => ({ policy, money: true });

export const moneyRoutes: RouteModule = async (app, { kit }) => {
  app.post(
    '/wallets/:studentId/top-ups',
    {
      config: money(policies.topUp),
      schema: {
        tags: ['wallets'],
        summary: 'Start a wallet top-up (a Stripe PaymentIntent)',
        params: Type.Object({ studentId: EntityId }, { additionalProperties: false }),
        headers: IdempotencyHeaders,
        body: TopUpBody,
        response: { 201: TopUpCreated, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { studentId } = request.params;
      const { amount, currency, paymentMethod, metadata } = request.body;
      const result = await kit.run('initiateTopUp', () =>
        kit.commands.initiateTopUp(kit.commandContext(request, metadata), {
          topUpId: kit.createdId(request, 'topup'),
          studentId,
          amount: { amount, currency },
          ...(paymentMethod !== undefined ? { paymentMethod } : {}),
        }),
      );
      return reply.code(201).send({ ...result.topUp, position: String(result.position) });
    },
  );

  app.post(
    '/bookings',
    {
      config: money(policies.placeBooking),
      schema: {
        tags: ['bookings'],
        summary: 'Book a session: places a hold on the student wallet',
        headers: IdempotencyHeaders,
        body: BookingBody,
        response: { 201: BookingChanged, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const result = await kit.run('placeBooking', () =>
        kit.commands.placeBooking(kit.commandContext(request, body.metadata), {
          bookingId: body.bookingId ?? kit.createdId(request, 'booking'),
          studentId: body.studentId,
          tutorId: body.tutorId,
          price: body.price,
          scheduledAt: instantParam(body.scheduledAt, 'body/scheduledAt').toISOString(),
          ...(body.promoCode !== undefined ? { promoCode: body.promoCode } : {}),
        }),
      );
      return reply.code(201).send({ ...result.booking, position: String(result.position) });
    },
  );

  const BookingParams = Type.Object({ bookingId: EntityId }, { additionalProperties: false });

  app.post(
    '/bookings/:bookingId/complete',
    {
      config: money(policies.completeBooking),
      schema: {
        tags: ['bookings'],
        summary: 'Complete a booking: captures the hold and splits it between tutor and platform',
        params: BookingParams,
        headers: IdempotencyHeaders,
        body: CompleteBody,
        response: { 200: BookingChanged, ...errorResponses(409, 413, 422) },
      },
      // The body is optional: without one (how this route was always called) it is an empty one.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
    },
    async (request) => {
      const result = await kit.run('completeBooking', () =>
        kit.commands.completeBooking(kit.commandContext(request, request.body.metadata), {
          bookingId: request.params.bookingId,
        }),
      );
      return { ...result.booking, position: String(result.position) };
    },
  );

  app.post(
    '/bookings/:bookingId/cancel',
    {
      config: money(policies.cancelBooking),
      schema: {
        tags: ['bookings'],
        summary: 'Cancel a booking: releases the hold (minus the late-cancellation fee)',
        params: BookingParams,
        headers: IdempotencyHeaders,
        body: CancelBody,
        response: { 200: BookingChanged, ...errorResponses(409, 413, 422) },
      },
    },
    async (request) => {
      const result = await kit.run('cancelBooking', () =>
        kit.commands.cancelBooking(kit.commandContext(request, request.body.metadata), {
          bookingId: request.params.bookingId,
          reason: request.body.reason,
        }),
      );
      return { ...result.booking, position: String(result.position) };
    },
  );

  app.post(
    '/bookings/:bookingId/refunds',
    {
      config: money(policies.refundBooking),
      schema: {
        tags: ['bookings'],
        summary: 'Refund a completed booking to the wallet (all that remains, or an amount)',
        params: BookingParams,
        headers: IdempotencyHeaders,
        body: RefundBody,
        response: { 201: RefundCreated, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { amount, reason, metadata } = request.body;
      const result = await kit.run('refundBooking', () =>
        kit.commands.refundBooking(kit.commandContext(request, metadata), {
          bookingId: request.params.bookingId,
          reason,
          ...(amount !== undefined ? { amount } : {}),
        }),
      );
      return reply
        .code(201)
        .send({ refundId: result.refundId, booking: result.booking, position: String(result.position) });
    },
  );

  app.post(
    '/tutors/:tutorId/payouts',
    {
      config: money(policies.requestPayout),
      schema: {
        tags: ['tutors'],
        summary: 'Request a payout of available earnings',
        params: Type.Object({ tutorId: EntityId }, { additionalProperties: false }),
        headers: IdempotencyHeaders,
        body: PayoutBody,
        response: { 201: PayoutCreated, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { amount, currency, metadata } = request.body;
      const result = await kit.run('requestPayout', () =>
        kit.commands.requestPayout(kit.commandContext(request, metadata), {
          payoutId: kit.createdId(request, 'payout'),
          tutorId: request.params.tutorId,
          amount: { amount, currency },
        }),
      );
      return reply.code(201).send({ ...result.payout, position: String(result.position) });
    },
  );

  app.post(
    '/adjustments',
    {
      config: money(policies.adjust),
      schema: {
        tags: ['ledger'],
        summary: 'Manual adjustment of an account against platform:adjustments (finance admin, audited)',
        headers: IdempotencyHeaders,
        body: AdjustmentBody,
        response: { 201: AdjustmentCreated, ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { account, direction, amount, currency, reason, metadata, effectiveAt, corrects } = request.body;
      const result = await kit.run('adjust', () =>
        kit.commands.adjust(kit.commandContext(request, metadata), {
          account,
          direction,
          amount: { amount, currency },
          reason,
          ...backdatingOf(effectiveAt, corrects),
        }),
      );
      return reply.code(201).send({ entryId: result.entryId, position: String(result.position) });
    },
  );

  app.put(
    '/tenant/settings',
    {
      config: { policy: policies.updateSettings },
      schema: {
        tags: ['tenant'],
        summary: 'Change tenant settings (applies from the position of the change on)',
        headers: IdempotencyHeaders,
        body: SettingsPatch,
        response: { 200: SettingsChanged, ...errorResponses(409, 413, 415, 422) },
      },
    },
    async (request) => {
      const allowed = request.body.allowedCurrencies;
      if (allowed !== undefined) {
        // Money the ledger holds in a currency stays payable in it: the currency cannot be dropped.
        // Read from the read models, so a command racing this change can still move that currency.
        const held = await kit.queries.getCurrenciesHeld(kit.principal(request).tenantId);
        const dropped = held.filter((c) => !allowed.includes(c));
        if (dropped.length > 0) {
          throw new ApiError(
            'currency_in_use',
            `allowedCurrencies must keep ${dropped.join(', ')}: accounts of this tenant hold balances in it`,
            { details: { currencies: dropped } },
          );
        }
      }
      const result = await kit.run('updateSettings', () =>
        kit.commands.updateSettings(kit.commandContext(request), request.body),
      );
      return { settings: result.settings, position: String(result.position) };
    },
  );

  app.post(
    '/jobs/due-tasks',
    {
      config: { policy: policies.runDueTasks },
      schema: {
        tags: ['jobs'],
        summary: 'Run time-driven transitions now (hold expiry, earnings clearing); idempotent',
        body: DueTasksBody,
        response: { 200: DueTasksOut, ...errorResponses(409, 413) },
      },
    },
    async (request) => {
      const wallNow = new Date();
      const now = request.body.now ? instantParam(request.body.now, 'body/now') : wallNow;
      // Running transitions "as of the future" would expire holds and clear earnings early.
      if (now.getTime() > wallNow.getTime())
        throw new ApiError('validation_failed', 'now may not be in the future');
      return kit.run('runDueTasks', () => kit.commands.runDueTasks(kit.principal(request).tenantId, now));
    },
  );
};
