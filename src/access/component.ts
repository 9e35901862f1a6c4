import { join } from 'node:path';
import { databaseAccessRoutes } from '../api/access.js';
import { DEFAULT_ISSUER } from '../auth/credentials.js';
import { SigningKeys } from './signing-keys.js';
import { PierError } from '../errors.js';
import { credentialPasswordCheck, startProxy } from '../proxy/index.js';
import { InstanceDirectory } from '../instances/directory.js';
import type { ComponentFactory } from '../server/pier.js';
import { portError } from '../server/pier.js';

/**
 * How clients reach instances: database credentials (signed JWTs), the roles
 * API, and the TLS Postgres proxy that checks those credentials and routes
 * each connection to its instance.
 */
export const databaseAccess: ComponentFactory = async (ctx, options) => {
  const keys = new SigningKeys(ctx.store, {
    masterKey: ctx.masterKey,
    tokenLifetimeSeconds: ctx.config.credentialTtlSeconds,
  });
  await keys.start();
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    keys.stop();
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      '--tls-cert and --tls-key go together: pass both, or neither.',
    );
  }
  let bindAddresses: (addresses: string[]) => Promise<void> = async () => {};
  const directory = new InstanceDirectory(ctx.store, ctx.engine, ctx.config, (addresses) =>
    bindAddresses(addresses),
  );
  await directory.refresh();
  await ctx.identities.refresh();
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({
      host: options.host,
      port: options.proxyPort,
      tls:
        options.tlsCert && options.tlsKey
          ? { cert: options.tlsCert, key: options.tlsKey }
          : { dir: join(options.dataDir, 'tls') },
      directory,
      passwords: credentialPasswordCheck({
        publicKeys: () => keys.jwks(),
        issuer: DEFAULT_ISSUER,
        identities: ctx.identities,
      }),
      ...(options.proxyConnectionCaps ? { limits: options.proxyConnectionCaps } : {}),
    });
  } catch (error) {
    keys.stop();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw portError(error as NodeJS.ErrnoException, options.host, options.proxyPort, '--proxy-port');
    }
    throw error;
  }
  // Per-instance loopback listeners only make sense when Pier listens on loopback.
  const loopback = options.host.startsWith('127.') || options.host === 'localhost';
  bindAddresses = async (addresses) => {
    if (!loopback) return;
    await proxy
      .setInstanceAddresses(addresses)
      .catch((error) => options.log(`proxy: ${(error as Error).message}`));
  };
  await directory.refresh();

  const refresh = () =>
    void directory.refresh().catch((error) => options.log(`directory: ${(error as Error).message}`));
  // Identities deleted through another Pier process sharing the store stop logging in within a tick.
  const refreshIdentities = () =>
    void ctx.identities.refresh().catch((error) => options.log(`identities: ${(error as Error).message}`));
  ctx.reconciler.on('kick', refresh);
  ctx.reconciler.on('changed', refresh);
  ctx.reconciler.setBeforeReport((uid, state) => directory.setState(uid, state));
  const timer = setInterval(() => {
    refresh();
    refreshIdentities();
  }, 2000);
  timer.unref();

  return {
    routes: databaseAccessRoutes(keys),
    state: {
      proxyPort: proxy.port,
      proxyTlsPath:
        proxy.tlsPath.kind === 'native' ? 'native' : `javascript (native path ${proxy.tlsPath.why})`,
      ...(proxy.caCertPath ? { caCertPath: proxy.caCertPath } : {}),
    },
    close: async () => {
      clearInterval(timer);
      keys.stop();
      ctx.reconciler.off('kick', refresh);
      ctx.reconciler.off('changed', refresh);
      await proxy.close();
    },
  };
};
