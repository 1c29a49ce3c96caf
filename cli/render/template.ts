/**
 * `--format` templates, as `docker images --format` reads them: `{{.Field}}` actions between
 * literal text, `\t` and `\n` as tab and newline, `{{json .}}` for the whole row as one line of
 * JSON, and a `table` prefix for aligned columns (split at tabs) under a header. Only those actions
 * are understood: anything else is a usage error naming the fields, never a silent blank.
 * @module
 */

import { UsageError } from "../../core/errors.ts";
import { formatTable } from "./table.ts";

type Piece = { text: string } | { field: string } | { json: true };

/** A parsed template. */
export interface Template {
  /** The `table` prefix was given: columns and a header. */
  readonly table: boolean;
  /** Render rows: `get(row, field)` gives a field's text, `json(row)` the `{{json .}}` value. */
  render<R>(
    rows: readonly R[],
    get: (row: R, field: string) => string,
    json: (row: R) => unknown,
    options?: { maxWidth?: number },
  ): string;
}

/** `CreatedAt` -> `CREATED AT`, as docker's table headers. */
function headerOf(field: string): string {
  return field.replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase();
}

/**
 * Parse `template` for rows with `fields` (`table` alone, or with nothing after it, uses
 * `defaultBody`).
 * @throws {UsageError} for an unknown field, an action other than `.Field` or `json .`, or an
 * unclosed `{{`: exit 2, listing the fields.
 */
export function parseTemplate(
  template: string,
  fields: readonly string[],
  defaultBody: string,
): Template {
  const table = /^table(\s|$)/.test(template);
  let body = table ? template.slice(5).trim() || defaultBody : template;
  body = body.replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  const list = `${fields.map((f) => `{{.${f}}}`).join(", ")} or {{json .}}`;
  const pieces: Piece[] = [];
  let at = 0;
  while (at < body.length) {
    const open = body.indexOf("{{", at);
    if (open < 0) {
      pieces.push({ text: body.slice(at) });
      break;
    }
    if (open > at) pieces.push({ text: body.slice(at, open) });
    const close = body.indexOf("}}", open + 2);
    if (close < 0) {
      throw new UsageError(
        `--format ${JSON.stringify(template)} has "{{" without "}}": use ${list}`,
      );
    }
    const action = body.slice(open + 2, close).trim();
    const m = action.match(/^\.([A-Za-z]+)$/);
    if (m && fields.includes(m[1])) pieces.push({ field: m[1] });
    else if (/^json\s+\.$/.test(action)) pieces.push({ json: true });
    else {
      const near = m && fields.find((f) => f.toLowerCase() === m[1].toLowerCase());
      throw new UsageError(
        `--format: ${JSON.stringify(`{{${action}}}`)} is not a field${
          near ? ` (did you mean {{.${near}}}?)` : ""
        }; use ${list}`,
      );
    }
    at = close + 2;
  }
  return {
    table,
    render(rows, get, json, options = {}) {
      const line = (row: (typeof rows)[number]) =>
        pieces.map((p) =>
          "text" in p ? p.text : "field" in p ? get(row, p.field) : JSON.stringify(json(row))
        ).join("");
      if (!table) return rows.map(line).join("\n");
      const header = pieces.map((p) =>
        "text" in p ? p.text : "field" in p ? headerOf(p.field) : "JSON"
      ).join("");
      return formatTable(
        rows.map((r) => line(r).split("\t")),
        header.split("\t"),
        { maxWidth: options.maxWidth },
      );
    },
  };
}
