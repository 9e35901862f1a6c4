import { ProxyError } from './errors.js';
import { CANCEL_REQUEST_CODE, type PacketReader, PROTOCOL_3_0 } from './protocol.js';

/**
 * The StartupMessage, read inside TLS: who the client is (user, database),
 * the run-time parameters it wants, and optionally which instance
 * (`options=-c instance=<name>`). A CancelRequest may come here instead
 * (PostgreSQL 17 clients negotiate TLS for cancels too).
 */

export interface Startup {
  kind: 'startup';
  user: string;
  database: string;
  /** Forwarded to the backend: every parameter but user/database, `options` without `instance=`. */
  parameters: Record<string, string>;
  /** From `options`: `-c instance=NAME`, `--instance=NAME` or a bare `instance=NAME`. */
  instanceName: string | undefined;
  /** The client asked for protocol 3.x with x > 0 or for `_pq_.` options: answer NegotiateProtocolVersion. */
  negotiate: { minor: number; unsupportedOptions: string[] } | undefined;
}

export type StartupResult = Startup | { kind: 'cancel'; processId: number; secretKey: number };

export async function readStartup(reader: PacketReader, maxPacketBytes: number): Promise<StartupResult> {
  return parseStartup(await reader.readStartupPacket(maxPacketBytes));
}

/** The startup packet (length included) as the client meant it; throws a ProxyError the client is shown. */
export function parseStartup(packet: Buffer): StartupResult {
  const code = packet.readInt32BE(4);
  if (code === CANCEL_REQUEST_CODE && packet.length === 16) {
    return { kind: 'cancel', processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12) };
  }
  if (code >>> 16 !== PROTOCOL_3_0 >>> 16) {
    throw new ProxyError(
      'PROTOCOL_VIOLATION',
      `Unsupported frontend protocol ${code >>> 16}.${code & 0xffff}.`,
    );
  }
  const pairs = parseNulTerminatedPairs(packet.subarray(8));
  const parameters: Record<string, string> = {};
  const unsupportedOptions: string[] = [];
  let user: string | undefined;
  let database: string | undefined;
  let options: string | undefined;
  for (const [key, value] of pairs) {
    if (key === 'user') user = value;
    else if (key === 'database') database = value;
    else if (key === 'options') options = value;
    else if (key.startsWith('_pq_.')) unsupportedOptions.push(key);
    else parameters[key] = value;
  }
  if (!user) {
    throw new ProxyError('PROTOCOL_VIOLATION', 'No user name was given in the startup packet.', {
      hint: 'Set user= to the user the database credential was issued for.',
    });
  }
  const { instanceName, rest } = takeInstanceOption(options ?? '');
  if (rest) parameters.options = rest;
  const minor = code & 0xffff;
  return {
    kind: 'startup',
    user,
    database: database || user,
    parameters,
    instanceName,
    negotiate: minor > 0 || unsupportedOptions.length > 0 ? { minor: 0, unsupportedOptions } : undefined,
  };
}

function parseNulTerminatedPairs(body: Buffer): [string, string][] {
  // One decode: a NUL byte is never part of a UTF-8 sequence, so splitting the text splits the bytes.
  const parts = body.toString('utf8').split('\0');
  const strings: string[] = [];
  let terminated = parts.at(-1) === '';
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i] === '') {
      terminated = true; // the final empty string ends the list
      break;
    }
    strings.push(parts[i]);
  }
  if (!terminated) throw new ProxyError('PROTOCOL_VIOLATION', 'The startup packet is not NUL-terminated.');
  if (strings.length % 2 !== 0) {
    throw new ProxyError('PROTOCOL_VIOLATION', 'The startup packet has a parameter name without a value.');
  }
  const pairs: [string, string][] = [];
  for (let i = 0; i < strings.length; i += 2) pairs.push([strings[i], strings[i + 1]]);
  return pairs;
}

/**
 * Splits `options` the way Postgres does (whitespace separates, backslash
 * escapes), removes the instance selector and returns the rest re-escaped.
 *
 * @example
 * takeInstanceOption('-c instance=db1 -c search_path=app') // { instanceName: 'db1', rest: '-c search_path=app' }
 */
export function takeInstanceOption(options: string): { instanceName: string | undefined; rest: string } {
  const words = splitOptions(options);
  const kept: string[] = [];
  let instanceName: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    let setting: string | undefined;
    let consumed = 0;
    if (word === '-c' && i + 1 < words.length) {
      setting = words[i + 1];
      consumed = 1;
    } else if (word.startsWith('-c')) setting = word.slice(2);
    else if (word.startsWith('--')) setting = word.slice(2);
    else setting = word;
    const match = /^instance=(.*)$/s.exec(setting);
    if (match) {
      instanceName = match[1];
      i += consumed;
      continue;
    }
    kept.push(word);
  }
  return { instanceName, rest: kept.map((word) => word.replace(/[\\\s]/g, (c) => `\\${c}`)).join(' ') };
}

function splitOptions(options: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i];
    if (c === '\\' && i + 1 < options.length) {
      current += options[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}
