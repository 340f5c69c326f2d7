import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { ENTITY_ID_PATTERN, TENANT_ID_PATTERN } from '../domain/ids.js';
import { ApiError } from './problem.js';

/**
 * Authentication (HS256 JWT bearer tokens) and authorization (a declarative policy per route) in one
 * place. The tenant always comes from the token: no route takes a tenant from the request.
 */
/** `guardian`: a parent or carer, acting only on the students a tenant admin linked them to (guardianship.ts). */
export const ROLES = ['student', 'tutor', 'finance_admin', 'tenant_admin', 'service', 'guardian'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  sub: string;
  tenantId: string;
  roles: Role[];
}

/** Subjects become actor ids and, for students and tutors, entity ids in stream names. */
const SUBJECT = ENTITY_ID_PATTERN;
const MAX_TOKEN_CHARS = 4_096;
const MIN_SECRET_CHARS = 16;
/** Longest a token may be valid for (`exp - iat`), unless configured otherwise. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3_600;
/** How far the issuer's clock may run ahead of ours (`iat`, `nbf`) or behind it (`exp`). */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

export interface Authenticator {
  authenticate(authorizationHeader: string | undefined): Promise<Principal>;
}

export interface AuthenticatorOptions {
  jwtSecret: string;
  /** Bound on `exp - iat`: a token valid for longer is refused, whatever its signature. */
  maxTokenLifetimeSeconds?: number;
  /** Clock skew allowed on `iat`, `nbf` (ahead of us) and `exp` (behind us). */
  clockSkewSeconds?: number;
  /** Verified tokens remembered (until their exp) so a client's repeated token is checked once. */
  cacheSize?: number;
  /** Seconds since the epoch (tests). */
  nowSeconds?: () => number;
}

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.jwtSecret.length < MIN_SECRET_CHARS) {
    throw new Error(`JWT secret must be at least ${MIN_SECRET_CHARS} characters`);
  }
  const key = new TextEncoder().encode(options.jwtSecret);
  const clockTolerance = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const maxLifetime = options.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  if (!(Number.isSafeInteger(clockTolerance) && clockTolerance >= 0 && clockTolerance <= 3_600)) {
    throw new RangeError('clockSkewSeconds must be an integer in 0..3600');
  }
  if (!(Number.isSafeInteger(maxLifetime) && maxLifetime >= 1)) {
    throw new RangeError('maxTokenLifetimeSeconds must be a positive integer');
  }
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
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
      const now = nowSeconds();
      try {
        ({ payload } = await jwtVerify(jwt, key, {
          algorithms: ['HS256'],
          requiredClaims: ['exp', 'sub', 'iat'],
          clockTolerance,
          currentDate: new Date(now * 1000),
        }));
      } catch (error) {
        const reason =
          error instanceof joseErrors.JWTExpired
            ? 'token expired'
            : error instanceof joseErrors.JWTClaimValidationFailed
              ? `invalid token: ${error.message}`
              : 'invalid token';
        throw new ApiError('unauthenticated', reason);
      }
      checkLifetime(payload, now, clockTolerance, maxLifetime);
      const principal = principalFromClaims(payload);
      if (cacheSize > 0 && typeof payload.exp === 'number') {
        if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
        verified.set(jwt, { principal, expiresAtMs: payload.exp * 1000 });
      }
      return principal;
    },
  };
}

/**
 * `iat` no later than now (plus the skew) and `exp - iat` within the maximum lifetime: a stolen token is
 * useful for a bounded time only, and a token "issued tomorrow" is a broken or hostile issuer's clock.
 * jose has checked `exp` and `nbf` against the skew already; `iat` is required.
 */
function checkLifetime(
  claims: Record<string, unknown>,
  now: number,
  skewSeconds: number,
  maxLifetimeSeconds: number,
): void {
  const iat = claims.iat as number;
  const exp = claims.exp as number;
  if (iat > now + skewSeconds) {
    throw new ApiError(
      'unauthenticated',
      'invalid token: issued in the future (iat beyond the allowed clock skew)',
    );
  }
  if (exp - iat > maxLifetimeSeconds) {
    throw new ApiError(
      'unauthenticated',
      `invalid token: lifetime ${exp - iat} s is past the maximum of ${maxLifetimeSeconds} s`,
    );
  }
}

function principalFromClaims(claims: Record<string, unknown>): Principal {
  const { sub, tenant, roles } = claims;
  if (typeof sub !== 'string' || !SUBJECT.test(sub))
    throw new ApiError('unauthenticated', 'invalid sub claim');
  if (typeof tenant !== 'string' || !TENANT_ID_PATTERN.test(tenant)) {
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
  /** Lifetime from `iat`. */
  ttlSeconds: number;
  /** `iat` in seconds since the epoch (default now); null leaves the claim out (tests of refusals). */
  issuedAt?: number | null;
  /** `nbf` in seconds since the epoch (default: no claim). */
  notBefore?: number;
}): Promise<string> {
  if (!TENANT_ID_PATTERN.test(options.tenant)) throw new Error(`tenant must match ${TENANT_ID_PATTERN}`);
  if (!SUBJECT.test(options.sub)) throw new Error(`sub must match ${SUBJECT}`);
  if (options.roles.length === 0) throw new Error('at least one role is required');
  if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds <= 0) {
    throw new Error('ttlSeconds must be a positive integer');
  }
  const iat = options.issuedAt === undefined ? Math.floor(Date.now() / 1000) : options.issuedAt;
  const jwt = new SignJWT({ tenant: options.tenant, roles: options.roles })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setExpirationTime((iat ?? Math.floor(Date.now() / 1000)) + options.ttlSeconds);
  if (iat !== null) jwt.setIssuedAt(iat);
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(new TextEncoder().encode(options.secret));
}

// ---------------------------------------------------------------------------------------------------
// Authorization.

/**
 * What ties a request to its caller for a role that may only act on its own things:
 *  - param / body: the named path parameter or body field must equal the caller's sub;
 *  - account: the account path parameter must belong to the caller (`student:{sub}:...`, `tutor:{sub}:...`);
 *  - booking / payout / topUp: the loaded resource's field must equal the caller's sub (404 when not owned, so
 *    ids of other people's resources cannot be probed);
 *  - guardianOf: the caller is a linked guardian of the student named by the path parameter, or of the
 *    loaded booking's student (404 otherwise).
 */
export type Ownership =
  | { kind: 'param'; name: string }
  | { kind: 'body'; field: string }
  | { kind: 'account'; param: string; prefix: 'student' | 'tutor' }
  | { kind: 'booking'; param: string; field: 'studentId' | 'tutorId' }
  | { kind: 'payout'; param: string; field: 'tutorId' }
  | { kind: 'topUp'; param: string; field: 'studentId' }
  | { kind: 'guardianOf'; param: string; via?: 'booking' };

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
  /** Whether `guardianId` is a linked guardian of `studentId` now. */
  isGuardianOf(tenantId: string, studentId: string, guardianId: string): Promise<boolean>;
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
    case 'guardianOf': {
      const id = request.params[own.param];
      if (typeof id !== 'string') return 'hidden';
      const studentId =
        own.via === 'booking' ? (await loader.booking(principal.tenantId, id))?.studentId : id;
      if (studentId === undefined) return 'hidden';
      return (await loader.isGuardianOf(principal.tenantId, studentId, principal.sub)) ? 'owned' : 'hidden';
    }
  }
}
