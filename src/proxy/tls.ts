import { randomBytes, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
// @peculiar/x509 (through tsyringe) needs a Reflect metadata polyfill loaded before it.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { InstanceRoute } from './directory.js';
import type { NativeContext, NativeTlsBinding } from './native-tls.js';

/**
 * Server certificates. By default Pier is its own small CA: on first start it
 * writes `ca.crt`/`ca.key` and a server certificate into the TLS dir, and it
 * signs one certificate per instance whose SAN holds the instance's DNS name
 * and loopback address, so `sslmode=verify-full sslrootcert=ca.crt` works for
 * `host=<read_write_dns>` and for `host=<address>`. Keys are ECDSA P-256: its
 * handshake costs a fraction of RSA's, which matters for connection rate.
 * With `--tls-cert/--tls-key` the user's certificate serves every connection.
 */

export type TlsSource = { dir: string; names?: string[] } | { cert: string; key: string };

export interface TlsMaterial {
  /** The CA clients should trust (`sslrootcert`), when Pier made the certificates. */
  caCertPath: string | undefined;
  defaultContext: SecureContext;
  /** The context whose certificate names this instance; cached. */
  contextFor(route: InstanceRoute): Promise<SecureContext>;
  /** The same certificates for the native TLS path, when it is in use. */
  native?: {
    binding: NativeTlsBinding;
    defaultContext: NativeContext;
    contextFor(route: InstanceRoute): Promise<NativeContext>;
  };
}

const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 86_400_000;

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

// One ticket key for every context, so a session resumes whichever certificate served it.
const ticketKeys = randomBytes(48);

// AES-128-GCM first: as safe as AES-256 here and cheaper per record.
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
const TLS12_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
const GROUPS = 'X25519:P-256';

function secureContext(cert: string | Buffer, key: string | Buffer): SecureContext {
  return createSecureContext({
    cert,
    key,
    minVersion: 'TLSv1.2',
    ciphers: `${TLS13_SUITES}:${TLS12_CIPHERS}`,
    honorCipherOrder: true,
    ecdhCurve: GROUPS,
    ticketKeys,
    sessionTimeout: 3600,
  });
}

/** Both paths' contexts for one certificate: Node's, and the native one when that path is on. */
interface Identity {
  context: SecureContext;
  native: NativeContext | undefined;
}

function identity(
  cert: string | Buffer,
  key: string | Buffer,
  native: NativeTlsBinding | undefined,
): Identity {
  return {
    context: secureContext(cert, key),
    native: native?.context(Buffer.from(cert), Buffer.from(key), TLS12_CIPHERS, TLS13_SUITES, GROUPS),
  };
}

/** The TLS material for one default certificate and per-instance ones, for both paths. */
function material(
  caCertPath: string | undefined,
  defaultIdentity: Identity,
  identityFor: (route: InstanceRoute) => Promise<Identity>,
  binding: NativeTlsBinding | undefined,
): TlsMaterial {
  return {
    caCertPath,
    defaultContext: defaultIdentity.context,
    contextFor: async (route) => (await identityFor(route)).context,
    native:
      binding && defaultIdentity.native
        ? {
            binding,
            defaultContext: defaultIdentity.native,
            contextFor: async (route) => (await identityFor(route)).native as NativeContext,
          }
        : undefined,
  };
}

/**
 * Loads (or on first start creates) the proxy's certificates.
 *
 * @example
 * const tls = await loadTlsMaterial({ dir: join(pierHome, 'tls') });
 * // psql "host=db1.pier.localhost sslmode=verify-full sslrootcert=${tls.caCertPath}"
 */
export async function loadTlsMaterial(
  source: TlsSource,
  options: { native?: NativeTlsBinding } = {},
): Promise<TlsMaterial> {
  if ('cert' in source) {
    const only = identity(await readFile(source.cert), await readFile(source.key), options.native);
    return material(undefined, only, async () => only, options.native);
  }
  const ca = await loadOrCreateCa(source.dir);
  const names = source.names ?? ['localhost', '127.0.0.1', '::1', hostname()];
  const serverCert = join(source.dir, 'server.crt');
  const serverKey = join(source.dir, 'server.key');
  if (!existsSync(serverCert) || !existsSync(serverKey)) {
    const issued = await issueServerCertificate(ca, names);
    await writeSecret(serverKey, issued.keyPem);
    await writeFile(serverCert, issued.certPem);
  }
  const defaultIdentity = identity(await readFile(serverCert), await readFile(serverKey), options.native);
  const perInstance = new Map<string, Promise<Identity>>();
  const identityFor = (route: InstanceRoute): Promise<Identity> => {
    const names = [route.dnsName, ...(route.address ? [route.address] : [])];
    const cacheKey = names.join(',');
    let issued = perInstance.get(cacheKey);
    if (!issued) {
      if (perInstance.size > 10_000) perInstance.clear();
      issued = issueServerCertificate(ca, names).then(({ certPem, keyPem }) =>
        identity(certPem, keyPem, options.native),
      );
      perInstance.set(cacheKey, issued);
      issued.catch(() => perInstance.delete(cacheKey));
    }
    return issued;
  };
  return material(join(source.dir, 'ca.crt'), defaultIdentity, identityFor, options.native);
}

interface CertificateAuthority {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

async function loadOrCreateCa(dir: string): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = new x509.X509Certificate(await readFile(certPath, 'utf8'));
    const der = x509.PemConverter.decodeFirst(await readFile(keyPath, 'utf8'));
    const key = await webcrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
    return { cert, key: key as unknown as CryptoKey };
  }
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, [
    'sign',
    'verify',
  ])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Pier local CA ${hostname()}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writeSecret(keyPath, await pkcs8Pem(keys.privateKey));
  await writeFile(certPath, cert.toString('pem'));
  return { cert, key: keys.privateKey };
}

async function issueServerCertificate(
  ca: CertificateAuthority,
  names: string[],
): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, [
    'sign',
    'verify',
  ])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names[0]}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    // 397 days: the longest validity clients accept for a leaf certificate.
    notAfter: new Date(now + 397 * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name) => ({ type: isIpAddress(name) ? ('ip' as const) : ('dns' as const), value: name })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  // The chain lets clients that trust only the CA verify the leaf.
  return {
    certPem: `${cert.toString('pem')}\n${ca.cert.toString('pem')}\n`,
    keyPem: await pkcs8Pem(keys.privateKey),
  };
}

function isIpAddress(name: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.includes(':');
}

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f; // positive
  return bytes.toString('hex');
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function writeSecret(path: string, content: string): Promise<void> {
  const partial = `${path}.partial-${process.pid}`;
  await writeFile(partial, content, { mode: 0o600 });
  await chmod(partial, 0o600);
  await rename(partial, path);
}
