import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The production compose file's rules, checked without a container engine: no secret with a default,
 * compose refuses to start without them, only the app's port is published (Grafana's on loopback
 * only), the current Node LTS image, a healthcheck per service using a command its image ships, and
 * the CLI runnable inside the image.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const text = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const composeText = text('docker-compose.yml');

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  command?: string[] | string;
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
}
const compose = parse(composeText) as { services: Record<string, Service> };
const services = compose.services;

/** What each image's healthcheck may run: a program the image is known to ship. */
const SHIPPED: Record<string, readonly string[]> = {
  // EventStoreDB's Dockerfile installs curl for its own HEALTHCHECK.
  'eventstore/eventstore': ['curl'],
  postgres: ['pg_isready'],
  redis: ['redis-cli', 'grep'],
  // Our image: node (no curl in node's slim images).
  app: ['node'],
  // busybox-based / Alpine-based: wget, no curl.
  'prom/prometheus': ['wget'],
  'grafana/grafana': ['wget'],
};

function healthProgram(test: string[] | string): string {
  const parts = typeof test === 'string' ? ['CMD-SHELL', test] : test;
  const [kind, ...rest] = parts;
  if (kind === 'CMD') return rest[0]!;
  if (kind === 'CMD-SHELL') return rest.join(' ').trim().split(/\s+/)[0]!;
  throw new Error(`healthcheck test must start with CMD or CMD-SHELL, got ${kind}`);
}

describe('docker-compose.yml', () => {
  it('has no default for any secret, and requires JWT_SECRET and the passwords from .env', () => {
    expect(composeText).not.toMatch(/\$\{[A-Z_]*(SECRET|PASSWORD)[A-Z_]*:-[^}]+\}/);
    const app = services.app!.environment!;
    expect(app.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?.+\}$/);
    expect(app.REDIS_URL).toMatch(/^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379$/);
    expect(app.DATABASE_URL).toMatch(/\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/);
    expect(services.postgres!.environment!.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:\?.+\}$/);
    const redis = services.redis!;
    expect(redis.environment!.REDIS_PASSWORD).toMatch(/^\$\{REDIS_PASSWORD:\?.+\}$/);
    expect(JSON.stringify(redis.command)).toContain('--requirepass');
    expect(services.grafana!.environment!.GF_SECURITY_ADMIN_PASSWORD).toMatch(
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?.+\}$/,
    );
  });

  it('publishes only the app port (monitoring: Grafana on loopback only)', () => {
    for (const [name, service] of Object.entries(services)) {
      const ports = service.ports ?? [];
      if (name === 'app') {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's interpolation, not a JS template
        expect(ports).toEqual(['${LEDGER_PORT:-3000}:3000']);
      } else if (service.profiles?.includes('monitoring')) {
        for (const port of ports) expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:/);
      } else {
        expect(ports, `${name} must not publish a port`).toEqual([]);
      }
    }
    expect(services.prometheus!.profiles).toEqual(['monitoring']);
    expect(services.grafana!.profiles).toEqual(['monitoring']);
  });

  it('gives every service a healthcheck its image can run, and starts the app after its stores are healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.healthcheck, `${name} has no healthcheck`).toBeDefined();
      const image = name === 'app' ? 'app' : service.image!.split(':')[0]!;
      const allowed = SHIPPED[image];
      expect(allowed, `no known programs for image ${image}`).toBeDefined();
      expect(allowed).toContain(healthProgram(service.healthcheck!.test));
    }
    expect(services.app!.depends_on).toEqual({
      eventstore: { condition: 'service_healthy' },
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
  });

  it('mounts monitoring files that exist', () => {
    const sources = ['prometheus', 'grafana'].flatMap((name) =>
      (services[name]!.volumes ?? []).map((v) => v.split(':')[0]!).filter((v) => v.startsWith('./')),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(existsSync(path.join(ROOT, source)), source).toBe(true);
  });
});

describe('the app image', () => {
  const dockerfile = text('Dockerfile');

  it('builds on the current Node LTS line (26 since 2026-10-28) and keeps .env out of the build context', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:26-[a-z]+-slim$/m);
    expect(dockerfile.match(/^FROM \$\{NODE_IMAGE\}/gm)).toHaveLength(2);
    expect(text('.dockerignore').split('\n')).toContain('.env');
    expect(text('.gitignore').split('\n')).toContain('.env');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["ledger"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["serve"\]$/m);
  });

  const scratch = mkdtempSync(path.join(tmpdir(), 'ledger-image-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('its entrypoint serves by default and runs any other argument as a CLI command, exec-ing node', () => {
    // A stand-in `node` that prints what it was asked to run.
    writeFileSync(path.join(scratch, 'node'), '#!/bin/sh\necho "node $*"\n');
    chmodSync(path.join(scratch, 'node'), 0o755);
    const run = (...args: string[]) =>
      execFileSync('sh', [path.join(ROOT, 'docker', 'entrypoint.sh'), ...args], {
        env: { PATH: `${scratch}:/usr/bin:/bin`, APP_DIR: '/app' },
        encoding: 'utf8',
      }).trim();
    expect(run()).toBe('node /app/dist/src/main.js');
    expect(run('serve')).toBe('node /app/dist/src/main.js');
    expect(run('migrate')).toBe('node /app/dist/src/cli/main.js migrate');
    expect(run('export', '--out', '/data/x.ndjson')).toBe(
      'node /app/dist/src/cli/main.js export --out /data/x.ndjson',
    );
  });

  it('npm run compose:env writes every secret compose requires, once', () => {
    const env = path.join(scratch, '.env');
    execFileSync(process.execPath, [path.join(ROOT, 'docker', 'generate-env.mjs'), env]);
    const values = Object.fromEntries(
      readFileSync(env, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split('=') as [string, string]),
    );
    const required = [...composeText.matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]!);
    expect(new Set(Object.keys(values))).toEqual(new Set(required));
    for (const value of Object.values(values)) expect(value).toMatch(/^[0-9a-f]{32,}$/);
    expect(() =>
      execFileSync(process.execPath, [path.join(ROOT, 'docker', 'generate-env.mjs'), env], { stdio: 'pipe' }),
    ).toThrow();
  });
});
