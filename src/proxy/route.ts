import type { InstanceRoute, ProxyDirectory } from './directory.js';
import { ProxyError } from './errors.js';
import type { Startup } from './startup.js';

/** What a connection tells about the instance it wants. */
interface ClientHints {
  servername: string | undefined;
  localAddress: string | undefined;
  startup: Startup;
  audience: string[];
}

/**
 * Which instance a client wants, in this order (docs/proxy.md):
 * 1. TLS SNI equal to an instance's DNS name (`host=<read_write_dns>`);
 * 2. the per-instance loopback address the client connected to;
 * 3. `options=-c instance=<name>` in the startup packet;
 * 4. the credential's audience, when it names exactly one instance.
 * Then the instance must be AVAILABLE. A read-only route (`read_only_dns`)
 * sends each connection to the next streaming secondary.
 */
export function routeConnection(directory: ProxyDirectory, client: ClientHints): InstanceRoute {
  const route = chooseInstance(directory, client);
  // A suspended instance is routed: the proxy wakes it once the credential is known to open it.
  if (route.state !== 'AVAILABLE' && !(route.wakeOnConnect && directory.waking)) throw notAvailable(route);
  if (route.secondarySocketDirs) return toSecondary(route, route.secondarySocketDirs);
  return route;
}

/** Round robin over the secondaries, shared by every read-only route (an even spread per instance is enough). */
let nextSecondary = 0;

function toSecondary(route: InstanceRoute, socketDirs: string[]): InstanceRoute {
  if (socketDirs.length === 0) {
    throw new ProxyError(
      'INSTANCE_NOT_AVAILABLE',
      `No readable secondary of database instance '${route.name}' is streaming and caught up right now.`,
      {
        hint: `Read from its read_write_dns meanwhile, or wait until effective_node_count is above 1 (pier database get-database-instance ${route.name}).`,
      },
    );
  }
  nextSecondary = (nextSecondary + 1) % 1_000_000;
  return { ...route, socketDir: socketDirs[nextSecondary % socketDirs.length] };
}

/**
 * Which instance's certificate a TLS handshake presents: the one whose DNS
 * name the client sent as SNI, else the one whose address it dialled, else
 * none (the default certificate). Both TLS paths ask this, once per handshake.
 */
export function certificateRoute(
  directory: ProxyDirectory,
  servername: string | undefined,
  localAddress: string | undefined,
): InstanceRoute | undefined {
  return (
    (servername ? directory.byDnsName(servername) : undefined) ??
    (localAddress ? directory.byAddress(normalizeAddress(localAddress)) : undefined)
  );
}

/** `::ffff:127.1.0.7` → `127.1.0.7` (listeners on IPv4 report plain addresses; dual-stack ones do not). */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function chooseInstance(directory: ProxyDirectory, client: ClientHints): InstanceRoute {
  const bySni = client.servername ? directory.byDnsName(client.servername) : undefined;
  if (bySni) return bySni;
  const byAddress = client.localAddress
    ? directory.byAddress(normalizeAddress(client.localAddress))
    : undefined;
  if (byAddress) return byAddress;
  const { instanceName } = client.startup;
  if (instanceName !== undefined) {
    const byName = directory.byName(instanceName);
    if (byName) return byName;
    throw new ProxyError('INSTANCE_NOT_FOUND', `Database instance '${instanceName}' does not exist.`, {
      hint: 'List instances with: pier database list-database-instances',
    });
  }
  if (client.audience.length === 1) {
    const byToken = directory.byUid(client.audience[0]);
    if (byToken) return byToken;
    throw new ProxyError(
      'INSTANCE_NOT_FOUND',
      'The database instance this credential was issued for no longer exists.',
      { hint: 'List instances with: pier database list-database-instances' },
    );
  }
  throw new ProxyError(
    'INSTANCE_NOT_CHOSEN',
    `The credential opens ${client.audience.length} instances and the connection does not say which one.`,
    { hint: "Connect to the instance's read_write_dns, or add options='-c instance=<name>'." },
  );
}

function notAvailable(route: InstanceRoute): ProxyError {
  const name = route.name;
  const state = route.state;
  const wait = `Wait until it is AVAILABLE (pier database get-database-instance ${name}) and reconnect.`;
  const hints: Record<string, string> = {
    STOPPED: `Start it with: pier database start-database-instance ${name}`,
    STOPPING: `It is stopping. Start it again with: pier database start-database-instance ${name}`,
    STARTING: wait,
    UPDATING: wait,
    DELETING: 'It is being deleted; create a new instance with: pier database create-database-instance',
    FAILING: `See its status with: pier database get-database-instance ${name}`,
    FAILED: `It needs an operator; see why with: pier database get-database-instance ${name}`,
  };
  if (state === 'DELETING' || state === 'DELETED') {
    return new ProxyError('INSTANCE_NOT_FOUND', `Database instance '${name}' is being deleted.`, {
      hint: hints.DELETING,
    });
  }
  return new ProxyError('INSTANCE_NOT_AVAILABLE', `Database instance '${name}' is ${state}, not AVAILABLE.`, {
    hint: hints[state] ?? wait,
  });
}
