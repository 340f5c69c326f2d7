import { SignJWT } from 'jose';

export type Role = 'student' | 'tutor' | 'finance_admin' | 'tenant_admin' | 'service';

/** HS256 bearer tokens as the API expects them (claims sub, tenant, roles, exp), minted with JWT_SECRET. */
export class TokenMinter {
  private readonly key: Uint8Array;
  private readonly cache = new Map<string, string>();

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async token(tenant: string, sub: string, role: Role, ttlSeconds = 4 * 3600): Promise<string> {
    const cacheKey = `${tenant}|${sub}|${role}|${ttlSeconds}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    const jwt = await mint(this.key, { tenant, sub, roles: [role] }, ttlSeconds);
    this.cache.set(cacheKey, jwt);
    return jwt;
  }
}

/** Mints with arbitrary claims and key: also used to forge bad tokens (wrong key, expired, no tenant). */
export async function mint(
  key: Uint8Array,
  claims: { sub?: string; tenant?: string; roles?: string[] },
  ttlSeconds: number,
): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  const builder = new SignJWT({
    ...(claims.tenant ? { tenant: claims.tenant } : {}),
    roles: claims.roles ?? [],
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(nowS - 5)
    .setExpirationTime(nowS + ttlSeconds);
  if (claims.sub) builder.setSubject(claims.sub);
  return builder.sign(key);
}
