import { PierError } from '../errors.js';
import type { Metadata, Protocol } from './actions.js';
import type { ColumnMappingMode } from './schema.js';

/** The highest `minReaderVersion` Pier reads. */
export const MAX_READER_VERSION = 3;

/**
 * Reader features (PROTOCOL.md, "Valid Feature Names in Table Features")
 * this reader implements. `typeWidening-preview` is the name Delta 3.2 used
 * before the feature was finalised.
 */
export const SUPPORTED_READER_FEATURES: ReadonlySet<string> = new Set([
  'columnMapping',
  'deletionVectors',
  'timestampNtz',
  'typeWidening',
  'typeWidening-preview',
  'v2Checkpoint',
  'vacuumProtocolCheck',
]);

/**
 * Throws a clear error when the table needs a reader version or reader
 * feature Pier does not implement.
 */
export function checkReadable(location: string, protocol: Protocol): void {
  if (protocol.minReaderVersion > MAX_READER_VERSION) {
    throw new PierError(
      'NOT_IMPLEMENTED',
      `Delta table at ${location} needs reader version ${protocol.minReaderVersion}; Pier reads up to ${MAX_READER_VERSION}.`,
    );
  }
  if (protocol.minReaderVersion === 3) {
    const missing = (protocol.readerFeatures ?? []).filter(
      (feature) => !SUPPORTED_READER_FEATURES.has(feature),
    );
    if (missing.length > 0) {
      throw new PierError(
        'NOT_IMPLEMENTED',
        `Delta table at ${location} needs reader feature${missing.length > 1 ? 's' : ''} ${missing
          .map((f) => `'${f}'`)
          .join(', ')}, which Pier does not support.`,
      );
    }
  }
}

/** Column mapping applies only where the protocol allows it (reader 2, or 3 with the feature). */
export function columnMappingMode(protocol: Protocol, metadata: Metadata): ColumnMappingMode {
  const enabled =
    protocol.minReaderVersion === 2 ||
    (protocol.minReaderVersion === 3 && (protocol.readerFeatures ?? []).includes('columnMapping'));
  if (!enabled) return 'none';
  const mode = metadata.configuration['delta.columnMapping.mode'] ?? 'none';
  if (mode !== 'none' && mode !== 'name' && mode !== 'id') {
    throw new PierError('NOT_IMPLEMENTED', `Column mapping mode '${mode}' is not supported.`);
  }
  return mode;
}
export function changeDataFeedEnabled(metadata: Metadata): boolean {
  return metadata.configuration['delta.enableChangeDataFeed'] === 'true';
}
