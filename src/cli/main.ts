#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { ComponentFactory } from '../server/pier.js';
import { registerCatalogCommands } from './catalog.js';
import { describeCliError, registerDatabaseCommands } from './database.js';
import { registerServerCommands } from './server.js';

/** What `pier up` runs besides the API and the reconciler. */
const components: ComponentFactory[] = [];

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('pier')
  .description('Self-hostable Lakebase Provisioned: Postgres instances, OAuth credentials over TLS, catalog and reverse ETL.')
  .version(pkg.version)
  .option('--data-dir <dir>', 'Pier data directory (default $PIER_HOME or ~/.pier).')
  .option('-p, --profile <name>', '~/.databrickscfg profile to use.')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

registerServerCommands(program, components);
registerDatabaseCommands(program);
registerCatalogCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`${describeCliError(error)}\n`);
  process.exit(1);
}
