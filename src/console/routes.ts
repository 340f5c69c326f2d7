import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { PROBLEM_CONTENT_TYPE, problem } from '../api/problem.js';
import { type ConsoleAssets, etagOf, loadConsoleAssets } from './assets.js';

/**
 * `GET /console` (the page) and `GET /console/assets/{name}` (its script and stylesheet), public: the
 * page holds no data, it asks the /v1 API with the bearer token the user signs in with. The token never
 * reaches these routes (it travels in the URL fragment once, then lives in the tab's sessionStorage).
 *
 * The Content-Security-Policy allows only this origin's own script, styles and API: no inline script, so
 * nothing injected into a page (say an id in a search result) can run.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

export function consolePage(assets: Pick<ConsoleAssets, 'script' | 'stylesheet'>): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Finance console · WeMaster Ledger</title>
<link rel="stylesheet" href="/console/assets/${assets.stylesheet.name}">
<script type="module" src="/console/assets/${assets.script.name}"></script>
</head>
<body>
<noscript>The finance console needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`;
}

export interface ConsoleRoutesOptions {
  /** Where the files come from (tests may pass a fixed set); default: loadConsoleAssets(). */
  assets?: () => Promise<ConsoleAssets>;
}

export function consoleRoutes(options: ConsoleRoutesOptions = {}): FastifyPluginAsync {
  const load = options.assets ?? loadConsoleAssets;
  return async (app) => {
    let page: { html: Buffer; etag: string; from: ConsoleAssets } | undefined;
    const pageOf = (assets: ConsoleAssets) => {
      if (page?.from !== assets) {
        const html = Buffer.from(consolePage(assets));
        page = { html, etag: etagOf(html), from: assets };
      }
      return page;
    };

    app.get('/', { schema: { hide: true }, config: { public: true } }, async (_request, reply) =>
      securityHeaders(reply)
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>WeMaster Ledger</title></head>' +
            '<body><h1>WeMaster Ledger</h1><ul>' +
            '<li><a href="/console">Finance console</a></li>' +
            '<li><a href="/docs">API documentation</a> (<a href="/docs/json">OpenAPI JSON</a>)</li>' +
            '</ul></body></html>',
        ),
    );

    app.get('/console', { schema: { hide: true }, config: { public: true } }, async (request, reply) => {
      const { html, etag } = pageOf(await load());
      securityHeaders(reply).header('cache-control', 'no-cache').header('etag', etag);
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('text/html; charset=utf-8').send(html);
    });
    // `/console/` and deep links land on the same page (the page routes on the fragment).
    app.get('/console/', { schema: { hide: true }, config: { public: true } }, async (_request, reply) =>
      reply.redirect('/console', 301),
    );

    app.get<{ Params: { name: string } }>(
      '/console/assets/:name',
      { schema: { hide: true }, config: { public: true } },
      async (request, reply) => {
        const file = (await load()).byName.get(request.params.name);
        if (!file) {
          return reply
            .code(404)
            .type(PROBLEM_CONTENT_TYPE)
            .send(problem('not_found', 'no such console asset'));
        }
        return securityHeaders(reply)
          .header('cache-control', 'public, max-age=31536000, immutable')
          .type(file.contentType)
          .send(file.body);
      },
    );
  };
}
