import { handleClient, type ProxyContext } from './connection.js';
import { MAX_BEING_REFUSED } from './connection-caps.js';
import type { InstanceRoute } from './directory.js';
import type { AdoptedBackend } from './native-backend.js';
import { NativeClient } from './native-client.js';
import {
  type EventHandler,
  type NativeConnection,
  type NativeContext,
  NativeEvent,
  type NativeFront,
  type NativeState,
  type NativeTlsBinding,
} from './native-tls.js';

export interface NativeFrontDoor {
  /** Listens on a literal IP address; returns the port (useful with 0) and how to stop. */
  listen(address: string, port: number): { port: number; close(): void };
  activeClients(): number;
  /** Ends every connection now. */
  closeAll(): void;
}

/**
 * Starts the native front door for the proxy context `ctx`: C accepts and
 * counts connections against the caps; each connection's first event makes
 * a `NativeClient` that `handleClient` drives, like any other connection.
 */
export function startNativeFrontDoor(
  binding: NativeTlsBinding,
  ctx: ProxyContext,
  contexts: { defaultContext: NativeContext; contextFor(route: InstanceRoute): Promise<NativeContext> },
  resetTimeoutMs: number,
): NativeFrontDoor {
  const certificates = { ...contexts, ready: new Map<string, NativeContext>() };
  let front: NativeFront | undefined;
  const frontOf = () => front as NativeFront;

  /** A connection C has just told us of for the first time. */
  function accepted(conn: NativeConnection): NativeClient {
    const [remote, local, overCap] = binding.addresses(conn);
    const client = new NativeClient(
      binding,
      frontOf,
      conn,
      certificates,
      resetTimeoutMs,
      remote,
      local,
      overCap || undefined,
    );
    void handleClient(client, ctx);
    return client;
  }

  const onEvent: EventHandler = (conn, state: NativeState, type, a, b, c) => {
    if (type === NativeEvent.BACKEND_DATA || type === NativeEvent.BACKEND_LOST) {
      const backend = state as AdoptedBackend['state'];
      if (backend.resetting)
        return backend.resetting(type === NativeEvent.BACKEND_DATA ? (a as Buffer) : undefined);
      // A warm session spoke or closed while it waited for a client.
      if (type === NativeEvent.BACKEND_LOST) ctx.pool.forget(backend.session);
      return;
    }
    state.client ??= accepted(conn);
    (state.client as NativeClient).deliver(type, a, b, c);
  };

  front = binding.front(onEvent, contexts.defaultContext, {
    maxStartup: ctx.limits.maxStartupPacketBytes,
    maxPassword: ctx.limits.maxPasswordBytes,
    preAuthMs: ctx.limits.preAuthTimeoutMs,
    maxConnections: ctx.limits.maxConnections,
    maxPerAddress: ctx.limits.maxConnectionsPerAddress,
    maxRefusing: MAX_BEING_REFUSED,
  });
  return {
    listen(address, port) {
      const { listener, port: bound } = binding.listen(frontOf(), address, port);
      return { port: bound, close: () => binding.closeListener(listener) };
    },
    activeClients: () => binding.stats(frontOf()),
    closeAll: () => binding.closeAll(frontOf()),
  };
}
