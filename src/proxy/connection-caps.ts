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
  admit(address: string): { over: OverCap | 'drop'; release(): void } {
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
        `sorry, too many clients already: ${address} has ${connections(caps.maxConnectionsPerAddress)} open, the limit for one address.`,
        {
          hint: 'Close idle connections (or pool them) and try again. The limit is set with: pier up --proxy-max-connections-per-address <n>',
        },
      );
}

const connections = (n: number) => `${n} connection${n === 1 ? '' : 's'}`;
