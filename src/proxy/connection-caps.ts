import { isIPv6 } from 'node:net';
import { ProxyError } from './errors.js';

/**
 * How many client connections the proxy holds at once: in all, and from one
 * address. A connection over a cap is still answered (TLS, then the startup
 * packet, so the client can show the error) and refused with 53300, as
 * Postgres refuses with "sorry, too many clients already"; CancelRequests
 * still go through. At most `MAX_BEING_REFUSED` such connections are
 * answered at a time; past that a new one is closed at once, so the proxy
 * never holds more than `maxConnections + MAX_BEING_REFUSED` sockets.
 * The native path counts the same way in C (native/pier_tls.c).
 */
export interface ConnectionCapOptions {
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

export const DEFAULT_CONNECTION_CAPS: ConnectionCapOptions = {
  maxConnections: 1000,
  maxConnectionsPerAddress: 250,
};

export const MAX_BEING_REFUSED = 64;

/** Which cap a connection went over, if any. */
export type OverCap = 'total' | 'address' | undefined;

/**
 * What the limits count a client by: its IPv4 address, or its IPv6 /64 (a
 * host given one /64 can use any address in it). The same in
 * native/pier_tls.c (`format_client_key`).
 *
 * @example
 * clientKey('2001:db8:1:2:a:b:c:d') // '2001:db8:1:2::/64'
 */
export function clientKey(address: string): string {
  if (!isIPv6(address) || address === '::1') return address;
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // A dotted IPv4 tail (::1.2.3.4) stands for two groups.
  const rightGroups = right.length + (right.at(-1)?.includes('.') ? 1 : 0);
  const gap = tail === undefined ? [] : Array(8 - left.length - rightGroups).fill('0');
  const groups = [...left, ...gap, ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/** The counts for the JavaScript path. */
export class ConnectionCaps {
  private open = 0;
  private refusing = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(readonly options: ConnectionCapOptions) {}

  /**
   * Counts a new connection from `address`. Returns the cap it went over (it
   * is then to be refused), or 'drop' when too many are being refused
   * already; `release` uncounts it when it closes.
   */
  admit(clientAddress: string): { over: OverCap | 'drop'; release(): void } {
    const address = clientKey(clientAddress);
    const fromAddress = this.perAddress.get(address) ?? 0;
    const over: OverCap =
      this.open >= this.options.maxConnections
        ? 'total'
        : fromAddress >= this.options.maxConnectionsPerAddress
          ? 'address'
          : undefined;
    if (over && this.refusing >= MAX_BEING_REFUSED) return { over: 'drop', release() {} };
    if (over) this.refusing++;
    else {
      this.open++;
      this.perAddress.set(address, fromAddress + 1);
    }
    let released = false;
    return {
      over,
      release: () => {
        if (released) return;
        released = true;
        if (over) {
          this.refusing--;
          return;
        }
        this.open--;
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.perAddress.set(address, left);
        else this.perAddress.delete(address);
      },
    };
  }
}

/** The refusal for a connection over a cap (both paths). */
export function tooManyConnections(
  over: 'total' | 'address',
  address: string,
  caps: ConnectionCapOptions,
): ProxyError {
  return over === 'total'
    ? new ProxyError(
        'TOO_MANY_CONNECTIONS',
        `sorry, too many clients already: the Pier proxy holds ${connections(caps.maxConnections)}, its limit.`,
        {
          hint: 'Close idle connections (or pool them) and try again. The limit is set with: pier up --proxy-max-connections <n>',
        },
      )
    : new ProxyError(
        'TOO_MANY_CONNECTIONS',
        `sorry, too many clients already: ${clientKey(address)} has ${connections(caps.maxConnectionsPerAddress)} open, the limit for one address.`,
        {
          hint: 'Close idle connections (or pool them) and try again. The limit is set with: pier up --proxy-max-connections-per-address <n>',
        },
      );
}

const connections = (n: number) => `${n} connection${n === 1 ? '' : 's'}`;
