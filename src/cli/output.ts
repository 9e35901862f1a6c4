/** Prints a result as the Databricks CLI does for JSON output. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress for long work goes to stderr, so stdout stays parseable. */
export function progress(message: string): void {
  if (process.stderr.isTTY || process.env.PIER_PROGRESS) process.stderr.write(`${message}\n`);
}
