/**
 * The one table formatter of the command line: aligned columns, two spaces apart, built as one
 * string so a listing of 10,000 rows is one write.
 * @module
 */

import { sanitize } from "../../core/log.ts";

/**
 * Lay `rows` out in aligned columns (two spaces apart, the last column unpadded, so lines carry no
 * trailing blanks), with an optional header row first. Returns the lines joined by newlines,
 * without a final newline.
 */
export function formatTable(
  rows: readonly (readonly string[])[],
  header?: readonly string[],
): string {
  // Cells are text from outside (tags, labels, catalog rows): controls made visible, one line each.
  const all = (header ? [header, ...rows] : rows).map((r) => r.map((c) => sanitize(c, true)));
  const widths: number[] = [];
  for (const row of all) {
    for (let i = 0; i < row.length - 1; i++) {
      const n = row[i].length;
      if (!(widths[i] >= n)) widths[i] = n;
    }
  }
  const lines = new Array<string>(all.length);
  for (let r = 0; r < all.length; r++) {
    const row = all[r];
    let line = "";
    for (let i = 0; i < row.length - 1; i++) line += row[i].padEnd(widths[i]) + "  ";
    lines[r] = line + (row.length ? row[row.length - 1] : "");
  }
  return lines.join("\n");
}
