import { ROLES, type Role, signToken } from '../api/auth.js';

/** `npm run cli -- token --tenant T --sub S --role R [--role R2] [--ttl seconds]`: a development token. */
export async function printToken(options: {
  tenant: string;
  sub: string;
  roles: string[];
  secret: string;
  ttlSeconds: number;
}): Promise<string> {
  const roles: Role[] = [];
  for (const role of options.roles) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new Error(`unknown role "${role}" (one of ${ROLES.join(', ')})`);
    }
    roles.push(role as Role);
  }
  const token = await signToken({
    tenant: options.tenant,
    sub: options.sub,
    roles,
    secret: options.secret,
    ttlSeconds: options.ttlSeconds,
  });
  process.stdout.write(`${token}\n`);
  return token;
}
