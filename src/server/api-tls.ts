import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { PierError } from '../errors.js';

/** The API's certificate chain and private key (PEM), as node:https takes them. */
export interface ApiTls {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads `--api-tls-cert` / `--api-tls-key`: both, or neither (plain HTTP).
 * A missing file, or a key that is not the certificate's, is a clear error
 * before Pier starts anything.
 *
 * @example
 * const tls = await readApiTls({ apiTlsCert: 'api.crt', apiTlsKey: 'api.key' });
 * serve({ fetch, createServer: https.createServer, serverOptions: tls });
 */
export async function readApiTls(options: {
  apiTlsCert?: string;
  apiTlsKey?: string;
}): Promise<ApiTls | undefined> {
  if (options.apiTlsCert === undefined && options.apiTlsKey === undefined) return undefined;
  if (options.apiTlsCert === undefined || options.apiTlsKey === undefined) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      '--api-tls-cert and --api-tls-key go together: pass both (HTTPS API), or neither.',
    );
  }
  const read = async (file: string, flag: string) =>
    readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new PierError('INVALID_PARAMETER_VALUE', `Cannot read ${flag} ${file} (${error.code}).`, {
        cause: error,
      });
    });
  const tls = {
    cert: await read(options.apiTlsCert, '--api-tls-cert'),
    key: await read(options.apiTlsKey, '--api-tls-key'),
  };
  try {
    createSecureContext(tls);
  } catch (cause) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `--api-tls-cert ${options.apiTlsCert} and --api-tls-key ${options.apiTlsKey} are not a PEM certificate and its private key (${(cause as Error).message}).`,
      { cause },
    );
  }
  return tls;
}

/** Addresses only this host can reach: tokens sent there never cross a network. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** What `pier up` warns when the API answers other hosts over plain HTTP, or nothing. */
export function plainHttpWarning(host: string, tls: ApiTls | undefined): string | undefined {
  if (tls || isLoopback(host)) return undefined;
  return `warning: the API listens on ${host} over plain HTTP, so access tokens and database credentials travel in clear text. Pass --api-tls-cert and --api-tls-key to serve HTTPS, or listen on 127.0.0.1.`;
}
