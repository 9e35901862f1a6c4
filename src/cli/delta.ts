import { type Command, InvalidArgumentError } from 'commander';
import {
  type DeltaRow,
  type DeltaType,
  type DeltaValue,
  openDeltaTable,
  readChanges,
  type StructType,
  toSparkJson,
  typeName,
  type VersionBound,
} from '../delta/index.js';
import { isPierError } from '../errors.js';

/**
 * `pier delta show` and `pier delta changes`: look at a Delta table (a
 * snapshot, or its Change Data Feed) from the command line.
 */

/** Where the commands write; tests pass their own. */
export interface DeltaOutput {
  stdout: (text: string) => void | Promise<void>;
  stderr: (text: string) => void | Promise<void>;
}

type Format = 'table' | 'jsonl';

const TABLE_CHUNK = 1000;

/**
 * Adds `delta show` and `delta changes` to a program. The program must
 * call `enablePositionalOptions()`: otherwise Commander matches root options
 * after subcommands too, and the root's `--version` takes `delta show
 * --version N`.
 *
 * @example
 * const program = new Command('pier');
 * registerDeltaCommands(program);
 * await program.parseAsync(['node', 'pier', 'delta', 'show', './lake/daily_revenue', '--limit', '5']);
 */
export function registerDeltaCommands(program: Command, output: DeltaOutput = processOutput()): void {
  const delta = program
    .command('delta')
    .description('Read Delta Lake tables: snapshots, time travel and the change data feed.');

  delta
    .command('show')
    .description('Print the schema, version, file count and rows of a Delta table.')
    .argument('<path>', 'table location: a directory or file:// URI')
    .option('--version <n>', 'read this table version', parseVersion)
    .option(
      '--timestamp <time>',
      'read the version current at this time (ISO-8601; UTC unless a zone is given)',
    )
    .option('--limit <n>', 'rows to print; 0 prints all', parseCount, 20)
    .option(
      '--format <format>',
      'table or jsonl (one JSON object per row, as Spark to_json)',
      parseFormat,
      'table',
    )
    .action(
      async (
        path: string,
        options: { version?: number; timestamp?: string; limit: number; format: Format },
        command: Command,
      ) => {
        await reportingErrors(command, async () => {
          if (options.version !== undefined && options.timestamp !== undefined) {
            throw new InvalidArgumentError('give --version or --timestamp, not both');
          }
          const snapshot = await openDeltaTable(path, {
            version: options.version,
            timestamp: options.timestamp,
          });
          const header = [
            `Table: ${path}`,
            `Version: ${snapshot.version}`,
            `Files: ${snapshot.files.length}`,
            `Partition columns: ${snapshot.partitionColumns.join(', ') || '(none)'}`,
            'Schema:',
            ...describeSchema(snapshot.schema),
          ].join('\n');
          // jsonl keeps stdout machine-readable: the header goes to stderr.
          await (options.format === 'jsonl' ? output.stderr : output.stdout)(`${header}\n`);
          const limit = options.limit === 0 ? undefined : options.limit;
          await printRows(output, snapshot.schema, snapshot.scan({ limit }), options.format);
        });
      },
    );

  delta
    .command('changes')
    .description('Print the change data feed of a Delta table between two versions (inclusive).')
    .argument('<path>', 'table location: a directory or file:// URI')
    .requiredOption(
      '--from <version|time>',
      'first version, or a time (first version committed at or after it)',
      parseBound,
    )
    .option(
      '--to <version|time>',
      'last version (default: latest), or a time (last version at or before it)',
      parseBound,
    )
    .option('--format <format>', 'table or jsonl', parseFormat, 'table')
    .action(
      async (
        path: string,
        options: { from: VersionBound; to?: VersionBound; format: Format },
        command: Command,
      ) => {
        await reportingErrors(command, async () => {
          const changes = await readChanges(path, options.from, options.to);
          const header = `Table: ${path}\nChanges: versions ${changes.startVersion} to ${changes.endVersion}\n`;
          await (options.format === 'jsonl' ? output.stderr : output.stdout)(header);
          await printRows(output, changes.schema, changes, options.format);
        });
      },
    );
}

/** One line per column: `  name: type` (with `not null` where the schema says so). */
function describeSchema(schema: StructType): string[] {
  return schema.fields.map((f) => `  ${f.name}: ${typeName(f.type)}${f.nullable ? '' : ' not null'}`);
}

async function printRows(
  output: DeltaOutput,
  schema: StructType,
  batches: AsyncIterable<DeltaRow[]>,
  format: Format,
) {
  let count = 0;
  if (format === 'jsonl') {
    for await (const rows of batches) {
      count += rows.length;
      await output.stdout(rows.map((row) => `${toSparkJson(schema, row)}\n`).join(''));
    }
    return;
  }
  const names = schema.fields.map((f) => f.name);
  let pending: string[][] = [];
  let printedHeader = false;
  const flush = async () => {
    const widths = names.map((name, c) => Math.max(name.length, ...pending.map((cells) => cells[c].length)));
    const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |\n`;
    let text = '';
    if (!printedHeader) {
      text += `\n${line(names)}|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`;
      printedHeader = true;
    }
    text += pending.map(line).join('');
    pending = [];
    await output.stdout(text);
  };
  for await (const rows of batches) {
    for (const row of rows) {
      pending.push(schema.fields.map((f) => cellText(f.type, row[f.name])));
      count += 1;
      if (pending.length >= TABLE_CHUNK) await flush();
    }
  }
  if (pending.length > 0 || !printedHeader) await flush();
  await output.stdout(`(${count} row${count === 1 ? '' : 's'})\n`);
}

function cellText(type: DeltaType, value: DeltaValue): string {
  if (value === null || value === undefined) return 'NULL';
  switch (type.type) {
    case 'string':
    case 'date':
    case 'timestamp':
    case 'timestamp_ntz':
    case 'decimal':
      return String(value);
    case 'binary':
      return `[${Buffer.from(value as Uint8Array)
        .toString('hex')
        .replace(/(..)(?!$)/g, '$1 ')}]`;
    case 'struct':
    case 'array':
    case 'map':
      return toSparkJson(type, value);
    default:
      return String(value);
  }
}

/** Runs an action; an error becomes one line on stderr and exit code 1. */
async function reportingErrors(command: Command, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (isPierError(error) || error instanceof InvalidArgumentError) {
      command.error(`error: ${error.message}`, { exitCode: 1, code: 'pier.delta' });
    }
    const message = error instanceof Error ? error.message : String(error);
    command.error(`error: reading the Delta table failed: ${message}`, { exitCode: 1, code: 'pier.delta' });
  }
}

function parseVersion(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('a version is a non-negative integer.');
  return Number(text);
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('give a non-negative integer.');
  return Number(text);
}

function parseFormat(text: string): Format {
  if (text !== 'table' && text !== 'jsonl') throw new InvalidArgumentError("use 'table' or 'jsonl'.");
  return text;
}

function parseBound(text: string): VersionBound {
  return /^\d+$/.test(text) ? Number(text) : { timestamp: text };
}

function processOutput(): DeltaOutput {
  const write = (stream: NodeJS.WriteStream) => (text: string) =>
    new Promise<void>((resolve, reject) => {
      stream.write(text, (error) => (error ? reject(error) : resolve()));
    });
  return { stdout: write(process.stdout), stderr: write(process.stderr) };
}
