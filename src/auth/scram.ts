import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * The most PBKDF2 iterations a verifier may ask for (about 25 ms of one core).
 * The count comes from the verifier, which a role can set for itself
 * (`ALTER ROLE … PASSWORD 'SCRAM-SHA-256$2147483647:…'`): without a ceiling
 * one login attempt would occupy a thread of Node's pool for hours. Postgres
 * writes 4096 (`scram_iterations`' default).
 */
export const MAX_SCRAM_ITERATIONS = 100_000;

/** What a password check found: a match, no match, or a verifier Pier will not compute. */
export type ScramVerdict = 'match' | 'mismatch' | 'too_costly';

interface Verifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
}

// Checked against when a role has no SCRAM verifier, so that case costs the same as a wrong password.
const STAND_IN: Verifier = { iterations: 4096, salt: Buffer.alloc(16), storedKey: Buffer.alloc(32) };

function parseVerifier(text: string | null): Verifier | undefined {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(text ?? '');
  if (!match) return undefined;
  const [, iterations, salt, storedKey] = match;
  return {
    iterations: Number(iterations),
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
  };
}

/**
 * Checks a cleartext password against a Postgres SCRAM-SHA-256 verifier
 * (`pg_authid.rolpassword`: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`),
 * as RFC 5802 defines: StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key")).
 * Any other verifier (MD5, none) never matches, after the same work as a
 * wrong password; one over `MAX_SCRAM_ITERATIONS` is refused without any.
 *
 * @example
 * await checkScramPassword('secret', row.rolpassword) // 'match' | 'mismatch' | 'too_costly'
 */
export async function checkScramPassword(password: string, verifier: string | null): Promise<ScramVerdict> {
  const parsed = parseVerifier(verifier);
  const { iterations, salt, storedKey } = parsed ?? STAND_IN;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_SCRAM_ITERATIONS)
    return 'too_costly';
  const salted = await pbkdf2Async(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const computed = createHash('sha256').update(clientKey).digest();
  const equal = storedKey.length === computed.length && timingSafeEqual(storedKey, computed);
  return parsed && equal ? 'match' : 'mismatch';
}
