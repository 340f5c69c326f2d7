import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { ApiError } from './problem.js';

/**
 * Authentication (HS256 JWT bearer tokens) and authorization (a declarative policy per route) in one
 * place. The tenant always comes from the token: no route takes a tenant from the request.
 */
export const ROLES = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  sub: string;
  tenantId: string;
  roles: Role[];
}

const TENANT = /^[a-z0-9_]{1,40}$/;
/** Subjects become actor ids and, for students and tutors, entity ids in stream names. */
const SUBJECT = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_TOKEN_CHARS = 4_096;
const MIN_SECRET_CHARS = 16;

export interface Authenticator {
  authenticate(authorizationHeader: string | undefined): Promise<Principal>;
}

export function createAuthenticator(options: {
  jwtSecret: string;
  clockToleranceSeconds?: number;
  /** Verified tokens remembered (until their exp) so a client's repeated token is checked once. */
  cacheSize?: number;
}): Authenticator {
  if (options.jwtSecret.length < MIN_SECRET_CHARS) {
    throw new Error(`JWT secret must be at least ${MIN_SECRET_CHARS} characters`);
  }
  const key = new TextEncoder().encode(options.jwtSecret);
  const clockTolerance = options.clockToleranceSeconds ?? 5;
  const cacheSize = options.cacheSize ?? 10_000;
  // Insertion-ordered: when full, the oldest entry goes. Only fully verified tokens enter.
  const verified = new Map<string, { principal: Principal; expiresAtMs: number }>();
  return {
    async authenticate(header) {
      if (!header) throw new ApiError('unauthenticated', 'missing Authorization: Bearer <token>');
      const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header);
      if (!match || match[1]!.length > MAX_TOKEN_CHARS) {
        throw new ApiError('unauthenticated', 'Authorization must be "Bearer <JWT>"');
      }
      const jwt = match[1]!;
      const cached = verified.get(jwt);
      if (cached) {
        if (Date.now() < cached.expiresAtMs) return cached.principal;
        verified.delete(jwt);
      }
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(jwt, key, {
          algorithms: ['HS256'],
          requiredClaims: ['exp', 'sub'],
          clockTolerance,
        }));
      } catch (error) {
        const reason = error instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
        throw new ApiError('unauthenticated', reason);
      }
      const principal = principalFromClaims(payload);
      if (cacheSize > 0 && typeof payload.exp === 'number') {
        if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
        verified.set(jwt, { principal, expiresAtMs: payload.exp * 1000 });
      }
      return principal;
    },
  };
}

function principalFromClaims(claims: Record<string, unknown>): Principal {
  const { sub, tenant, roles } = claims;
  if (typeof sub !== 'string' || !SUBJECT.test(sub))
    throw new ApiError('unauthenticated', 'invalid sub claim');
  if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
    throw new ApiError('unauthenticated', 'invalid tenant claim');
  }
  if (!Array.isArray(roles) || roles.length === 0 || roles.length > ROLES.length) {
    throw new ApiError('unauthenticated', 'roles claim must be a non-empty array');
  }
  const known: Role[] = [];
  for (const role of roles) {
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      throw new ApiError('unauthenticated', `unknown role ${String(role)}`);
    }
    if (!known.includes(role as Role)) known.push(role as Role);
  }
  return { sub, tenantId: tenant, roles: known };
}

/** Signs a token (development CLI, tests, benchmarks). */
export async function signToken(options: {
  tenant: string;
  sub: string;
  roles: Role[];
  secret: string;
  ttlSeconds: number;
}): Promise<string> {
  if (!TENANT.test(options.tenant)) throw new Error(`tenant must match ${TENANT}`);
  if (!SUBJECT.test(options.sub)) throw new Error(`sub must match ${SUBJECT}`);
  if (options.roles.length === 0) throw new Error('at least one role is required');
  if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new Error('ttlSeconds must be a positive integer');
  }
  return new SignJWT({ tenant: options.tenant, roles: options.roles })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds)
    .sign(new TextEncoder().encode(options.secret));
}

// ---------------------------------------------------------------------------------------------------
// Authorization.

/**
 * What ties a request to its caller for a role that may only act on its own things:
 *  - param / body: the named path parameter or body field must equal the caller's sub;
 *  - account: the account path parameter must belong to the caller (`student:{sub}:...`, `tutor:{sub}:...`);
 *  - booking / payout / topUp: the loaded resource's field must equal the caller's sub (404 when not owned, so
 *    ids of other people's resources cannot be probed).
 */
export type Ownership =
  | { kind: 'param'; name: string }
  | { kind: 'body'; field: string }
  | { kind: 'account'; param: string; prefix: 'student' | 'tutor' }
  | { kind: 'booking'; param: string; field: 'studentId' | 'tutorId' }
  | { kind: 'payout'; param: string; field: 'tutorId' }
  | { kind: 'topUp'; param: string; field: 'studentId' };

export interface Grant {
  role: Role;
  /** Omitted: the role may act on anything in its tenant. */
  own?: Ownership;
}

export type Policy = readonly Grant[];

/** Loads the owner fields of resources for ownership checks (tenant-scoped). */
export interface OwnershipLoader {
  booking(tenantId: string, bookingId: string): Promise<{ studentId: string; tutorId: string } | null>;
  payout(tenantId: string, payoutId: string): Promise<{ tutorId: string } | null>;
  topUp(tenantId: string, topUpId: string): Promise<{ studentId: string } | null>;
}

/** Grants the caller holds a role for; empty means 403 before anything else is looked at. */
export function grantsFor(policy: Policy, principal: Principal): Grant[] {
  return policy.filter((g) => principal.roles.includes(g.role));
}

/**
 * Returns the grant the request is allowed under (the first matching one, unconditional grants first),
 * or throws forbidden / not_found.
 */
export async function authorize(
  policy: Policy,
  principal: Principal,
  request: { params: Record<string, unknown>; body: unknown },
  loader: OwnershipLoader,
): Promise<Grant> {
  const grants = grantsFor(policy, principal);
  if (grants.length === 0) throw new ApiError('forbidden', 'your roles do not allow this operation');
  const unconditional = grants.find((g) => !g.own);
  if (unconditional) return unconditional;
  let hidden = false;
  for (const grant of grants) {
    const verdict = await checkOwnership(grant.own!, principal, request, loader);
    if (verdict === 'owned') return grant;
    if (verdict === 'hidden') hidden = true;
  }
  if (hidden) throw new ApiError('not_found');
  throw new ApiError('forbidden', 'you may only act on your own resources');
}

async function checkOwnership(
  own: Ownership,
  principal: Principal,
  request: { params: Record<string, unknown>; body: unknown },
  loader: OwnershipLoader,
): Promise<'owned' | 'forbidden' | 'hidden'> {
  switch (own.kind) {
    case 'param':
      return request.params[own.name] === principal.sub ? 'owned' : 'forbidden';
    case 'body': {
      const body = request.body as Record<string, unknown> | undefined;
      return body && body[own.field] === principal.sub ? 'owned' : 'forbidden';
    }
    case 'account': {
      const account = request.params[own.param];
      return typeof account === 'string' && account.startsWith(`${own.prefix}:${principal.sub}:`)
        ? 'owned'
        : 'forbidden';
    }
    case 'booking': {
      const id = request.params[own.param];
      const booking = typeof id === 'string' ? await loader.booking(principal.tenantId, id) : null;
      return booking && booking[own.field] === principal.sub ? 'owned' : 'hidden';
    }
    case 'payout': {
      const id = request.params[own.param];
      const payout = typeof id === 'string' ? await loader.payout(principal.tenantId, id) : null;
      return payout && payout[own.field] === principal.sub ? 'owned' : 'hidden';
    }
    case 'topUp': {
      const id = request.params[own.param];
      const topUp = typeof id === 'string' ? await loader.topUp(principal.tenantId, id) : null;
      return topUp && topUp[own.field] === principal.sub ? 'owned' : 'hidden';
    }
  }
}
