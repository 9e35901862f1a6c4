import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { CancelRequestKey } from './client-connection.js';
import type { InstanceRoute } from './directory.js';
import { ProxyError } from './errors.js';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  PacketReader,
  PROTOCOL_3_0,
  ProtocolViolation,
  SSL_REQUEST_CODE,
} from './protocol.js';
import type { TlsMaterial } from './tls.js';

/**
 * The first phase on Node's sockets (node-client.ts): agree on encryption. Clients either send SSLRequest and
 * start TLS after our 'S' (every libpq), or start TLS at once with ALPN
 * `postgresql` (PostgreSQL 17 `sslnegotiation=direct`). GSSAPI encryption is
 * declined with 'N'. A plaintext StartupMessage is refused: TLS is mandatory.
 * A CancelRequest may come in the clear (older libpq) and is returned as is.
 */

const PG_ALPN = 'postgresql';
const TLS_HANDSHAKE_RECORD = 0x16;
const SSL_ACCEPTED = Buffer.from('S');
const GSSENC_DECLINED = Buffer.from('N');

/** The encrypted client stream. */
export type ClientStream = TLSSocket;

export type HandshakeResult =
  | { kind: 'tls'; stream: ClientStream; reader: PacketReader; servername: string | undefined }
  | CancelRequestKey;

export async function handshake(
  socket: Socket,
  options: {
    tls: TlsMaterial;
    /** Which instance's certificate to present, by SNI name (route.ts `certificateRoute`). */
    certificateFor: (servername: string | undefined) => InstanceRoute | undefined;
    maxPacketBytes: number;
    /** Called as soon as the socket is handed to TLS: errors must then go through the TLS stream. */
    onTlsStarted?: (stream: ClientStream) => void;
  },
): Promise<HandshakeResult> {
  const reader = new PacketReader(socket);
  let declinedGss = false;
  for (;;) {
    if ((await reader.peekByte()) === TLS_HANDSHAKE_RECORD) {
      // Direct TLS: give the ClientHello bytes back to the socket, TLS reads them from there.
      socket.unshift(reader.detach());
      return startTls(socket, options, true);
    }
    const packet = await reader.readStartupPacket(options.maxPacketBytes);
    const code = packet.readInt32BE(4);
    if (code === SSL_REQUEST_CODE && packet.length === 8) {
      // Bytes sent before our answer would be read as TLS by nobody: refuse them (CVE-2021-23214).
      if (reader.bufferedLength > 0) {
        throw new ProxyError(
          'PROTOCOL_VIOLATION',
          'Data was sent before the server answered the SSLRequest.',
        );
      }
      reader.detach();
      socket.write(SSL_ACCEPTED);
      return startTls(socket, options, false);
    }
    if (code === GSSENC_REQUEST_CODE && packet.length === 8 && !declinedGss) {
      declinedGss = true;
      socket.write(GSSENC_DECLINED);
      continue;
    }
    const cancel = plaintextRequest(packet);
    reader.detach();
    return cancel;
  }
}

/**
 * A first packet that is neither SSLRequest nor GSSENCRequest: a CancelRequest
 * is honoured in the clear; a plaintext startup is refused, TLS is mandatory.
 */
export function plaintextRequest(packet: Buffer): CancelRequestKey {
  const code = packet.readInt32BE(4);
  if (code === CANCEL_REQUEST_CODE && packet.length === 16) {
    return { kind: 'cancel', processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12) };
  }
  if (code >>> 16 === PROTOCOL_3_0 >>> 16) {
    throw new ProxyError('SSL_REQUIRED', 'SSL is required: Pier accepts only encrypted connections.', {
      hint: 'Connect with sslmode=require (or verify-full with sslrootcert=<Pier CA>).',
    });
  }
  throw new ProxyError('PROTOCOL_VIOLATION', `Unsupported protocol request code ${code}.`);
}

async function startTls(
  socket: Socket,
  options: {
    tls: TlsMaterial;
    certificateFor: (servername: string | undefined) => InstanceRoute | undefined;
    onTlsStarted?: (stream: ClientStream) => void;
  },
  direct: boolean,
): Promise<HandshakeResult> {
  const { tls, certificateFor } = options;
  // Before SNI is known (and for clients that send none), the certificate is chosen without it.
  const withoutSni = certificateFor(undefined);
  const secureContext = withoutSni ? await tls.contextFor(withoutSni) : tls.defaultContext;
  const stream = new TLSSocket(socket, {
    isServer: true,
    secureContext,
    ALPNProtocols: [PG_ALPN],
    SNICallback(servername, done) {
      const route = certificateFor(servername);
      if (!route) return done(null, undefined);
      tls.contextFor(route).then(
        (context) => done(null, context),
        (error: Error) => done(error, undefined),
      );
    },
  });
  options.onTlsStarted?.(stream);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) =>
      reject(new ProtocolViolation('CLOSED', `TLS handshake failed: ${error.message}`));
    stream.once('error', onError);
    stream.once('close', () => reject(new ProtocolViolation('CLOSED', 'closed during the TLS handshake')));
    stream.once('secure', () => {
      stream.off('error', onError);
      resolve();
    });
  });
  return tlsEstablished(stream, direct);
}

function tlsEstablished(stream: ClientStream, direct: boolean): HandshakeResult {
  checkAlpn(direct, stream.alpnProtocol || undefined);
  const servername = (stream as { servername?: string | false }).servername || undefined;
  return { kind: 'tls', stream, reader: new PacketReader(stream), servername };
}

/** As Postgres does: direct TLS without the ALPN is some other protocol talking to us. */
export function checkAlpn(direct: boolean, alpn: string | undefined): void {
  if (direct && alpn !== PG_ALPN) {
    throw new ProxyError('PROTOCOL_VIOLATION', 'Direct TLS connections must use ALPN "postgresql".');
  }
}
