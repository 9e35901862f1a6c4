import { readFileSync } from 'node:fs';
import { type ConnectionOptions, createSecureContext, rootCertificates } from 'node:tls';
import { PierClientError } from './errors.js';

/**
 * `verify-full` (the default): the server's chain and its name are checked.
 * `verify-ca`: the chain only. `require`, which Databricks Apps set in
 * `PGSSLMODE`, is treated as `verify-full` (as node-postgres does): Lakebase
 * and Pier both present certificates that verify, so nothing is lost.
 */
export type SslMode = 'verify-full' | 'verify-ca' | 'require';

const MODES = ['verify-full', 'verify-ca', 'require'];

/** The sslmode asked for, refusing the modes that would send a token without TLS. */
export function sslModeFrom(value: string | undefined): SslMode {
  if (value === undefined || value === '') return 'verify-full';
  if (MODES.includes(value)) return value as SslMode;
  throw new PierClientError(
    'configuration',
    `sslmode '${value}' is not supported: Lakebase only takes TLS connections, and its password is a token that must not travel in the clear. Use verify-full (the default), verify-ca or require.`,
  );
}

/**
 * TLS options for node-postgres. The trusted roots are Node's (plus
 * `NODE_EXTRA_CA_CERTS`) and, when given, `rootCert` — a PEM file path or
 * the PEM itself, e.g. Pier's CA from `pier status -o env` (`PGSSLROOTCERT`);
 * `system` means Node's roots only, as in libpq. One secure context is built
 * here and shared by every connection, so a new session does not parse a
 * hundred root certificates again.
 */
export function tlsOptions(
  mode: SslMode,
  rootCert: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): ConnectionOptions {
  const ca = [...rootCertificates];
  if (env.NODE_EXTRA_CA_CERTS) ca.push(readPem(env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS'));
  if (rootCert && rootCert !== 'system') ca.push(readPem(rootCert, 'sslrootcert'));
  return {
    secureContext: createSecureContext({ ca }),
    rejectUnauthorized: true,
    ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  };
}

function readPem(pathOrPem: string, what: string): string {
  if (pathOrPem.includes('-----BEGIN')) return pathOrPem;
  try {
    return readFileSync(pathOrPem, 'utf8');
  } catch (cause) {
    throw new PierClientError(
      'configuration',
      `Cannot read ${what} ${pathOrPem}: ${(cause as NodeJS.ErrnoException).code}. Point it at a PEM file (on Pier: \`npx pier status -o env\` sets PGSSLROOTCERT).`,
      { cause },
    );
  }
}
