// Plain-text tables for bench output: columns padded to their widest cell, two spaces apart.

export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  for (const line of formatTable(header, rows)) console.log(line);
}
