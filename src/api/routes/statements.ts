import { stringify } from 'csv-stringify/sync';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { ChainStore } from '../../chain/chainStore.js';
import type { BillingSettingsService } from '../../commands/billingSettings.js';
import {
  annualCsv,
  monthPeriod,
  renderAnnualPdf,
  renderStatementPdf,
  statementCsv,
  yearPeriod,
} from '../../documents/statements.js';
import type { BalancesAsOfQueries } from '../../projections/balancesAsOf.js';
import type { TutorStatement, TutorStatementQueries } from '../../projections/tutorStatements.js';
import type { Policy } from '../auth.js';
import { CHAIN_HEAD_HEADER, exportChainHead } from '../chainHeadExport.js';
import { ApiError } from '../problem.js';
import { instantParam } from '../requestValues.js';
import { EntityId, errorResponses } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';

/**
 * Tutor statements on demand (src/documents/statements.ts): the monthly statement and the yearly
 * earnings summary, as PDF or CSV, for any period that has ended (an open period would not be
 * reproducible). The tutor reads their own; finance admins anyone's.
 */
const strict = { additionalProperties: false } as const;
const POLICY: Policy = [
  { role: 'finance_admin' },
  { role: 'tutor', own: { kind: 'param', name: 'tutorId' } },
];
const Month = Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'yyyy-mm (UTC)' });
const Year = Type.String({ pattern: '^\\d{4}$', description: 'yyyy (UTC)' });
const bytes = (type: string) => ({
  200: { description: type, content: { [type]: { schema: Type.String() } } },
  ...errorResponses(422),
});

export function statementRoutes(options: {
  statements: TutorStatementQueries;
  balances: BalancesAsOfQueries;
  billing: BillingSettingsService;
  clock: () => Date;
  /**
   * The tenants' hash chains: the closing-balances CSV (an accountant's export) ends with the tenant's
   * chain head (chainHeadExport.ts). Tutors' statements do not: their reader is the tutor, and the
   * head is the tenant's (GET /v1/ledger/chain-head is for finance admins). Absent where there is no
   * chain (the shell harness's documents).
   */
  chain?: ChainStore;
}): RouteModule {
  const { statements, balances, billing, clock, chain } = options;

  async function load(tenantId: string, tutorId: string, period: { from: Date; to: Date } | null) {
    if (!period) throw new ApiError('validation_failed', 'not a period of 2000..9998');
    if (period.to.getTime() > clock().getTime()) {
      throw new ApiError(
        'invalid_state',
        'the period has not ended yet: statements are issued for ended periods',
      );
    }
    const currencies = await statements.currencies(tenantId, tutorId, period.to);
    const out: TutorStatement[] = [];
    for (const currency of currencies) {
      out.push(await statements.statement(tenantId, tutorId, currency, period.from, period.to));
    }
    const b = await billing.get(tenantId);
    return {
      list: out,
      settings: { legalName: b.legalName, address: b.address, taxId: b.taxId, locale: b.locale },
    };
  }

  const send = (reply: FastifyReply, type: string, filename: string, body: string | Buffer) =>
    reply
      .header('content-type', type)
      .header('content-disposition', `attachment; filename="${filename}"`)
      // The 200 schema describes the bytes for OpenAPI; fastify sends them as they are.
      .send(body as unknown as string);

  return async (app, { kit }) => {
    const MonthParams = Type.Object({ tutorId: EntityId, month: Month }, strict);
    const YearParams = Type.Object({ tutorId: EntityId, year: Year }, strict);

    app.get(
      '/ledger/balances.csv',
      {
        config: { policy: [{ role: 'finance_admin' }, { role: 'tenant_admin' }, { role: 'service' }] },
        schema: {
          operationId: 'exportBalancesCsv',
          tags: ['finance'],
          summary:
            'Every account’s posted totals and balance at an instant (a period’s closing balances for the accountant; with GET /journal.csv the period’s postings)',
          querystring: Type.Object({ asOf: Type.String({ format: 'date-time', maxLength: 40 }) }, strict),
          produces: ['text/csv'],
          response: bytes('text/csv; charset=utf-8'),
        },
      },
      async (request, reply) => {
        // The domain's parser, within years 1-9999 (new Date() took year 0, which Postgres refused: a 500).
        const asOf = instantParam(request.query.asOf, 'querystring/asOf');
        const tenantId = kit.principal(request).tenantId;
        const rows = await balances.balancesAsOf(tenantId, asOf);
        const chainHead = chain ? await exportChainHead(chain, tenantId) : undefined;
        const csv = stringify(
          [
            ['as_of', 'account', 'kind', 'currency', 'debits_posted', 'credits_posted', 'balance'],
            ...rows.map((r) => [
              asOf.toISOString(),
              r.account,
              r.kind,
              r.currency,
              r.debitsPosted,
              r.creditsPosted,
              r.balance,
            ]),
          ],
          { escape_formulas: true },
        );
        if (chainHead?.anchor) reply.header(CHAIN_HEAD_HEADER, chainHead.anchor);
        return send(
          reply,
          'text/csv; charset=utf-8',
          `balances-${asOf.toISOString().slice(0, 10)}.csv`,
          chainHead ? `${csv}${chainHead.line}\n` : csv,
        );
      },
    );

    for (const format of ['pdf', 'csv'] as const) {
      const type = format === 'pdf' ? 'application/pdf' : 'text/csv; charset=utf-8';
      app.get(
        `/tutors/:tutorId/statements/:month.${format}`,
        {
          config: { policy: POLICY },
          schema: {
            operationId: format === 'pdf' ? 'getTutorStatementPdf' : 'getTutorStatementCsv',
            tags: ['documents'],
            summary: `A tutor's monthly statement as ${format.toUpperCase()}: opening and closing balances, earnings by booking with commission and tax, refunds, clawbacks, payouts`,
            params: MonthParams,
            produces: [type],
            response: bytes(type),
          },
        },
        async (request, reply) => {
          const { tutorId, month } = request.params;
          const { list, settings } = await load(kit.principal(request).tenantId, tutorId, monthPeriod(month));
          const name = `statement-${tutorId}-${month}.${format}`;
          return format === 'pdf'
            ? send(reply, type, name, await renderStatementPdf(list, { month, tutorId, settings }))
            : send(reply, type, name, statementCsv(list));
        },
      );
      app.get(
        `/tutors/:tutorId/statements/annual/:year.${format}`,
        {
          config: { policy: POLICY },
          schema: {
            operationId: format === 'pdf' ? 'getTutorAnnualSummaryPdf' : 'getTutorAnnualSummaryCsv',
            tags: ['documents'],
            summary: `A tutor's yearly earnings summary as ${format.toUpperCase()}, per currency: gross, commission, tax, refunds, net paid out`,
            params: YearParams,
            produces: [type],
            response: bytes(type),
          },
        },
        async (request, reply) => {
          const { tutorId, year } = request.params;
          const { list, settings } = await load(kit.principal(request).tenantId, tutorId, yearPeriod(year));
          const name = `earnings-${tutorId}-${year}.${format}`;
          return format === 'pdf'
            ? send(reply, type, name, await renderAnnualPdf(list, { year, tutorId, settings }))
            : send(reply, type, name, annualCsv(list));
        },
      );
    }
  };
}
