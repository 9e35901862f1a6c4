import { join } from 'node:path';
import { DEFAULT_ISSUER } from '../auth/credentials.js';
import { listenError, PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import { InstanceDirectory } from '../instances/directory.js';
import { ScaleToZero } from '../instances/scale-to-zero.js';
import { countProxyEvent } from '../metrics/registry.js';
import { credentialPasswordCheck, startProxy } from '../proxy/index.js';
import type { ComponentFactory } from '../server/pier.js';
import { followChanges, SAFETY_POLL_MS } from '../store/notifications.js';

/**
 * How clients reach instances: the TLS Postgres proxy that checks database
 * credentials (issued by access/credentials.ts, signed by ctx.keys) and
 * routes each connection through the instance directory. The credentials
 * and roles API is in api/access.ts.
 */
export const databaseAccess: ComponentFactory = async (ctx, options) => {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      '--tls-cert and --tls-key go together: pass both, or neither.',
    );
  }
  let bindAddresses: (addresses: string[]) => Promise<void> = async () => {};
  const directory = new InstanceDirectory(ctx.store, ctx.engine, ctx.config, (addresses) =>
    bindAddresses(addresses),
  );
  const scaleToZero = new ScaleToZero(ctx, directory);
  directory.waking = scaleToZero;
  ctx.activity = scaleToZero;
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
        publicKeys: () => ctx.keys.jwks(),
        issuer: DEFAULT_ISSUER,
        identities: ctx.identities,
      }),
      ...(options.proxyConnectionCaps ? { limits: options.proxyConnectionCaps } : {}),
      // The proxy's events, through its own logger interface, become /metrics counters.
      logger: countProxyEvent,
    });
  } catch (error) {
    throw listenError(error as NodeJS.ErrnoException, options.host, options.proxyPort, '--proxy-port');
  }
  // Per-instance loopback listeners only make sense when Pier listens on loopback.
  const loopback = options.host.startsWith('127.') || options.host === 'localhost';
  bindAddresses = async (addresses) => {
    if (!loopback) return;
    await proxy.setInstanceAddresses(addresses).catch((error) => noteFailure('proxy.bind-addresses', error));
  };
  await directory.refresh();
  scaleToZero.start();

  // This process's reconciler says at once; any other process's changes arrive by NOTIFY.
  const refresh = () => void directory.refresh().catch((error) => noteFailure('directory.refresh', error));
  ctx.reconciler.on('kick', refresh);
  ctx.reconciler.on('changed', refresh);
  ctx.reconciler.setBeforeReport((uid, state) => directory.setState(uid, state));
  const stopFollowing = [
    followChanges(ctx.changes, 'instances', () => directory.refresh(), {
      pollMs: SAFETY_POLL_MS,
      kind: 'directory.refresh',
    }),
    // An identity deleted through another Pier process sharing the store stops logging in at once.
    followChanges(ctx.changes, 'identities', () => ctx.identities.refresh(), {
      pollMs: SAFETY_POLL_MS,
      kind: 'identities.refresh',
    }),
  ];

  return {
    state: {
      proxyPort: proxy.port,
      proxyTlsPath:
        proxy.tlsPath.kind === 'native' ? 'native' : `javascript (native path ${proxy.tlsPath.why})`,
      ...(proxy.caCertPath ? { caCertPath: proxy.caCertPath } : {}),
    },
    close: async () => {
      scaleToZero.stop();
      for (const stop of stopFollowing) stop();
      ctx.reconciler.off('kick', refresh);
      ctx.reconciler.off('changed', refresh);
      await proxy.close();
    },
  };
};
