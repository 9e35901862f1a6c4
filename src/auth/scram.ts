import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * Checks a cleartext password against a Postgres SCRAM-SHA-256 verifier
 * (`pg_authid.rolpassword`: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`),
 * as RFC 5802 defines: StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key")).
 * Any other verifier (MD5, none) never matches.
 *
 * @example
 * await scramPasswordMatches('secret', row.rolpassword) // true or false
 */
export async function scramPasswordMatches(password: string, verifier: string | null): Promise<boolean> {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier ?? '');
  if (!match) return false;
  const [, iterations, salt, storedKey] = match;
  const salted = await pbkdf2Async(
    password.normalize('NFKC'),
    Buffer.from(salt, 'base64'),
    Number(iterations),
    32,
    'sha256',
  );
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const computed = createHash('sha256').update(clientKey).digest();
  const expected = Buffer.from(storedKey, 'base64');
  return expected.length === computed.length && timingSafeEqual(expected, computed);
}
