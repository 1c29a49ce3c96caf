/**
 * The one table formatter of the command line: aligned columns, two spaces apart, built as one
 * string so a listing of 10,000 rows is one write; and fitting a table to the terminal's width by
 * cutting its widest column with `…`.
 * @module
 */

import { sanitize } from "../../core/log.ts";

/** The narrowest a cut column gets (a cut below this says too little to be worth it). */
const MIN_CUT_WIDTH = 10;

/**
 * Column widths that fit `maxWidth` with `gap` spaces between columns: the widest column is made
 * narrower by the excess (not below {@link MIN_CUT_WIDTH}), the others kept. Without a limit, or
 * when the table fits, the widths come back unchanged.
 */
export function fitWidths(widths: readonly number[], maxWidth?: number, gap = 2): number[] {
  const fitted = [...widths];
  if (maxWidth === undefined || widths.length === 0) return fitted;
  const total = widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
  if (total <= maxWidth) return fitted;
  let widest = 0;
  for (let i = 1; i < widths.length; i++) if (widths[i] > widths[widest]) widest = i;
  const floor = Math.min(widths[widest], MIN_CUT_WIDTH);
  fitted[widest] = Math.max(floor, widths[widest] - (total - maxWidth));
  return fitted;
}

/** `text` cut to `width` columns, its end replaced by `…` when it is longer. */
export function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** Options of {@link formatTable}. */
export interface TableOptions {
  /** Fit lines to this many columns, cutting the widest column with `…` (default: no limit). */
  maxWidth?: number;
}

/**
 * Lay `rows` out in aligned columns (two spaces apart, the last column unpadded, so lines carry no
 * trailing blanks), with an optional header row first. Returns the lines joined by newlines,
 * without a final newline.
 */
export function formatTable(
  rows: readonly (readonly string[])[],
  header?: readonly string[],
  options: TableOptions = {},
): string {
  // Cells are text from outside (tags, labels, catalog rows): controls made visible, one line each.
  const all = (header ? [header, ...rows] : rows).map((r) => r.map((c) => sanitize(c, true)));
  const widths: number[] = [];
  // The last column's width counts only when fitting (it is never padded).
  const measured = options.maxWidth === undefined ? -1 : 0;
  for (const row of all) {
    for (let i = 0; i < row.length + measured; i++) {
      const n = row[i].length;
      if (!(widths[i] >= n)) widths[i] = n;
    }
  }
  const fitted = fitWidths(widths, options.maxWidth);
  const cutAt = fitted.findIndex((w, i) => w < widths[i]);
  const lines = new Array<string>(all.length);
  for (let r = 0; r < all.length; r++) {
    const row = all[r];
    let line = "";
    for (let i = 0; i < row.length - 1; i++) {
      line += (i === cutAt ? cut(row[i], fitted[i]) : row[i]).padEnd(fitted[i]) + "  ";
    }
    const last = row.length - 1;
    lines[r] = line +
      (row.length ? (last === cutAt ? cut(row[last], fitted[last]) : row[last]) : "");
  }
  return lines.join("\n");
}
