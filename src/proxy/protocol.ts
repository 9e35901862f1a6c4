import type { Duplex } from 'node:stream';

/**
 * The few Postgres wire-protocol messages the proxy reads or writes before
 * the splice, named as in the protocol documentation ("Message Formats").
 * After authentication nothing here runs: bytes pass through unparsed.
 */

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export function AuthenticationOk(): Buffer {
  return Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
}

export function AuthenticationCleartextPassword(): Buffer {
  return Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
}

export function ParameterStatus(name: string, value: string): Buffer {
  return message(0x53, Buffer.from(`${name}\0${value}\0`));
}

export function BackendKeyData(processId: number, secretKey: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(processId, 0);
  body.writeInt32BE(secretKey, 4);
  return message(0x4b, body);
}

export function ReadyForQuery(status: 'I' | 'T' | 'E' = 'I'): Buffer {
  return Buffer.from([0x5a, 0, 0, 0, 5, status.charCodeAt(0)]);
}

export function NegotiateProtocolVersion(newestMinor: number, unsupportedOptions: string[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(newestMinor, 0);
  head.writeInt32BE(unsupportedOptions.length, 4);
  return message(0x76, Buffer.concat([head, ...unsupportedOptions.map((name) => Buffer.from(`${name}\0`))]));
}

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function ErrorResponse(fields: ErrorFields): Buffer {
  const parts = [`S${fields.severity}`, `V${fields.severity}`, `C${fields.code}`, `M${fields.message}`];
  if (fields.detail) parts.push(`D${fields.detail}`);
  if (fields.hint) parts.push(`H${fields.hint}`);
  return message(0x45, Buffer.from(`${parts.join('\0')}\0\0`));
}

/** Reads the fields of an ErrorResponse or NoticeResponse body (type byte → value). */
export function parseErrorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(body[offset]), body.toString('utf8', offset + 1, end));
    offset = end + 1;
  }
  return fields;
}

/** Appends the fields of an ErrorResponse body back into a complete message. */
export function encodeErrorFields(type: number, fields: Map<string, string>): Buffer {
  const parts: string[] = [];
  for (const [key, value] of fields) parts.push(`${key}${value}`);
  return message(type, Buffer.from(`${parts.join('\0')}\0\0`));
}

/** StartupMessage for protocol 3.0 with the given parameters. */
export function StartupMessage(parameters: Record<string, string>): Buffer {
  const pairs = Object.entries(parameters).flat();
  const body = Buffer.from(`${pairs.join('\0')}\0\0`);
  const packet = Buffer.alloc(8 + body.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(packet, 8);
  return packet;
}

export function CancelRequest(processId: number, secretKey: number): Buffer {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  return packet;
}

export function Query(sql: string): Buffer {
  return message(0x51, Buffer.from(`${sql}\0`));
}

function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Raised when the peer breaks the protocol or closes; the connection is over either way. */
export class ProtocolViolation extends Error {
  readonly kind: 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE' | 'CLOSED';
  constructor(kind: 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE' | 'CLOSED', message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Reads length-prefixed packets from a stream that is still being parsed
 * (before the splice). `detach()` hands back whatever was read past the last
 * packet so no byte is lost when the connection moves on.
 */
export class PacketReader {
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;
  private readonly onData = (chunk: Buffer) => {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.wake();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onEnd);
  }

  get bufferedLength(): number {
    return this.buffered.length;
  }

  /** Resolves once at least one byte is buffered; returns the first byte. */
  async peekByte(): Promise<number> {
    await this.fill(1);
    return this.buffered[0];
  }

  /** A startup-phase packet: Int32 length (self-inclusive), then the rest. */
  async readStartupPacket(maxLength: number): Promise<Buffer> {
    await this.fill(4);
    const length = this.buffered.readInt32BE(0);
    if (length < 8)
      throw new ProtocolViolation('PROTOCOL_VIOLATION', `invalid startup packet length ${length}`);
    if (length > maxLength) {
      throw new ProtocolViolation(
        'PACKET_TOO_LARGE',
        `startup packet of ${length} bytes exceeds ${maxLength}`,
      );
    }
    await this.fill(length);
    return this.take(length);
  }

  /** A regular message: Byte1 type, Int32 length (self-inclusive), body. */
  async readMessage(maxLength: number): Promise<{ type: number; body: Buffer }> {
    await this.fill(5);
    const type = this.buffered[0];
    const length = this.buffered.readInt32BE(1);
    if (length < 4) throw new ProtocolViolation('PROTOCOL_VIOLATION', `invalid message length ${length}`);
    if (length > maxLength) {
      throw new ProtocolViolation('PACKET_TOO_LARGE', `message of ${length} bytes exceeds ${maxLength}`);
    }
    await this.fill(1 + length);
    const packet = this.take(1 + length);
    return { type, body: packet.subarray(5) };
  }

  /** Stops reading and returns the bytes read past the last packet. The stream is left paused. */
  detach(): Buffer {
    this.stream.pause();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onEnd);
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  private take(length: number): Buffer {
    const packet = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return packet;
  }

  private async fill(length: number): Promise<void> {
    while (this.buffered.length < length) {
      if (this.ended) throw new ProtocolViolation('CLOSED', 'the connection closed mid-packet');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
