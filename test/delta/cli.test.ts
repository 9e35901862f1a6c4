import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerDeltaCommands } from '../../src/cli/delta.js';
import { tableRoot } from './expected.js';

/** Runs `pier delta ...` in-process, as main.ts wires it, and captures what a user would see. */
async function pier(...args: string[]): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  let stdout = '';
  let stderr = '';
  const out = (text: string) => {
    stdout += text;
  };
  const err = (text: string) => {
    stderr += text;
  };
  // Root options would otherwise be matched after the subcommand too, and the
  // root's --version would swallow `delta show --version N`.
  const program = new Command('pier')
    .version('0.0.0')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err, outputError: (text, write) => write(text) });
  registerDeltaCommands(program, { stdout: out, stderr: err });
  try {
    await program.parseAsync(['node', 'pier', ...args]);
    return { stdout, stderr, exitCode: 0 };
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return { stdout, stderr, exitCode: error.exitCode };
  }
}

describe('pier delta show', () => {
  it('prints schema, version, file count and the first 20 rows', async () => {
    const root = tableRoot('table-with-dv-large');
    const { stdout, exitCode } = await pier('delta', 'show', root);
    assert.equal(exitCode, 0);
    assert.match(
      stdout,
      /^Table: .*\nVersion: 4\nFiles: \d+\nPartition columns: \(none\)\nSchema:\n {2}value: int\n/,
    );
    assert.match(stdout, /\| value \|\n\|-------\|\n/);
    assert.match(stdout, /\(20 rows\)\n$/);
  });

  it('prints every row with --limit 0 and travels with --version', async () => {
    const root = tableRoot('table-with-dv-large');
    const { stdout } = await pier('delta', 'show', root, '--limit', '0', '--version', '0');
    assert.match(stdout, /Version: 0\n/);
    assert.match(stdout, /\(2000 rows\)\n$/);
  });

  it('travels with --timestamp', async () => {
    const { stdout } = await pier(
      'delta',
      'show',
      tableRoot('cdf-table-simple'),
      '--timestamp',
      '2024-12-18T00:01:43.100Z',
    );
    assert.match(stdout, /Version: 0\n/);
    assert.match(stdout, /\(10 rows\)\n$/);
  });

  it('writes jsonl as Spark to_json does, header on stderr', async () => {
    const { stdout, stderr } = await pier(
      'delta',
      'show',
      tableRoot('with-short-dv'),
      '--format',
      'jsonl',
      '--limit',
      '0',
    );
    assert.match(stderr, /Version: 0\n/);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 7);
    assert.ok(
      lines.includes('{"id":3,"value":"3","timestamp":"2023-05-31T18:58:33.633Z","rand":0.7918174793484931}'),
      lines.join('\n'),
    );
  });

  it('renders decimals with their scale, dates and nested values', async () => {
    const { stdout } = await pier('delta', 'show', tableRoot('basic-decimal-table'), '--format', 'jsonl');
    assert.ok(
      stdout.split('\n').some((line) => /"col1":-?\d+\.\d{2}[,}]/.test(line)),
      stdout,
    );
    const nested = await pier(
      'delta',
      'show',
      tableRoot('data-reader-map'),
      '--format',
      'jsonl',
      '--limit',
      '1',
    );
    assert.match(nested.stdout, /^\{"i":\d+,"a":\{"\d+":\d+\}/);
  });

  it('fails with one clear line and exit code 1', async () => {
    const root = tableRoot('deltalog-invalid-protocol-version');
    const { stdout, stderr, exitCode } = await pier('delta', 'show', root);
    assert.equal(exitCode, 1);
    assert.equal(stdout, '');
    assert.equal(stderr, `error: Delta table at ${root} needs reader version 99; Pier reads up to 3.\n`);
    const missing = await pier('delta', 'show', '/nonexistent/table');
    assert.equal(missing.exitCode, 1);
    assert.equal(missing.stderr, 'error: No Delta table at /nonexistent/table: _delta_log has no commits.\n');
    const bad = await pier('delta', 'show', root, '--limit', 'x');
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /--limit <n>' argument 'x' is invalid/);
  });
});

describe('pier delta changes', () => {
  it('prints change rows with _change_type, _commit_version and _commit_timestamp', async () => {
    const { stdout, exitCode } = await pier(
      'delta',
      'changes',
      tableRoot('cdf-table-simple'),
      '--from',
      '1',
      '--to',
      '2',
    );
    assert.equal(exitCode, 0);
    assert.match(stdout, /Changes: versions 1 to 2\n/);
    assert.match(stdout, /\| id +\| _change_type \| _commit_version \| _commit_timestamp +\|/);
    assert.match(stdout, /\| 0 +\| delete +\| 1 +\| 2024-12-18T00:01:4\d\.\d{6}Z \|/);
    assert.match(stdout, /\(15 rows\)\n$/);
  });

  it('writes jsonl', async () => {
    const { stdout } = await pier(
      'delta',
      'changes',
      tableRoot('cdf-table'),
      '--from',
      '3',
      '--format',
      'jsonl',
    );
    assert.match(
      stdout,
      /^\{"id":7,"name":"Dennis","birthday":"2023-12-29","_change_type":"delete","_commit_version":3,"_commit_timestamp":"[^"]+Z"\}\n$/,
    );
  });

  it('fails clearly on a range it cannot read', async () => {
    const { stderr, exitCode } = await pier(
      'delta',
      'changes',
      tableRoot('cdf-table'),
      '--from',
      '2',
      '--to',
      '1',
    );
    assert.equal(exitCode, 1);
    assert.equal(stderr, 'error: Change data range is empty: start version 2 is after end version 1.\n');
  });
});

describe('pier delta show | head', () => {
  it('ends quietly when the reader stops early', async () => {
    const { spawn } = await import('node:child_process');
    const { PIER_BIN } = await import('../helpers/pier.js');
    // As `pier delta show … --limit 0 | head -1`: read one line, then close the pipe.
    const child = spawn(
      process.execPath,
      [PIER_BIN, 'delta', 'show', tableRoot('table-with-dv-large'), '--limit', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
