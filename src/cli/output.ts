/** Prints a result as the Databricks CLI does for JSON output. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress for long work goes to stderr, so stdout stays parseable. */
export function progress(message: string): void {
  if (process.stderr.isTTY || process.env.PIER_PROGRESS) process.stderr.write(`${message}\n`);
}

/** A table for people: a header row, then one row per item, columns padded to line up. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[header, ...rows].map(line).join('\n')}\n`);
}
