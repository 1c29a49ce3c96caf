/**
 * Text renderings of a SIF image, identical to what `siftool` prints for `header`, `list` and
 * `info`, plus the listing as rows for tables and `--json`.
 * @module
 */

import { GO_ZERO_TIME, NIL_UUID, type SifHeader, type SifObject } from "./sif.ts";

/** Go's `time.Time.String()` for a UTC time given in Unix seconds. */
export function formatGoTime(seconds: number): string {
  const ms = seconds * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return `${seconds} (Unix seconds)`;
  const iso = new Date(ms).toISOString(); // 2020-05-22T19:30:59.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`;
}

/** siftool's human-readable size: whole bytes under 1 KiB, else rounded binary units. */
export function readableSize(size: number): string {
  if (-1024 < size && size < 1024) return `${size} B`;
  const units = "KMGTPE";
  let div = 1024;
  let exp = 0;
  for (let n = Math.trunc(size / 1024); n <= -1024 || n >= 1024; n = Math.trunc(n / 1024)) {
    div *= 1024;
    exp++;
  }
  return `${Math.round(size / div)} ${units[exp]}iB`;
}

/** Lay out rows of cells like Go's text/tabwriter (minwidth 0, the given padding, spaces). */
function tabulate(rows: string[][], padding: number): string {
  const widths: number[] = [];
  for (const row of rows) {
    // The last cell of a row is not part of a column: tabwriter leaves it unpadded.
    for (let i = 0; i < row.length - 1; i++) {
      widths[i] = Math.max(widths[i] ?? 0, row[i].length + padding);
    }
  }
  return rows.map((row) =>
    row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]) : cell)).join("") + "\n"
  ).join("");
}

/** The header as `siftool header` prints it. */
export function formatHeader(header: SifHeader): string {
  const rows: string[][] = [];
  if (header.launchScript !== "") {
    rows.push(["Launch Script:", header.launchScript.replace(/\n$/, "")]);
  }
  rows.push(["Version:", header.version]);
  if (header.arch !== "unknown") rows.push(["Primary Architecture:", header.arch]);
  if (header.id !== NIL_UUID) rows.push(["ID:", header.id]);
  if (header.createdAt !== GO_ZERO_TIME) rows.push(["Created At:", formatGoTime(header.createdAt)]);
  if (header.modifiedAt !== GO_ZERO_TIME) {
    rows.push(["Modified At:", formatGoTime(header.modifiedAt)]);
  }
  rows.push(["Descriptors Free:", String(header.descriptorsFree)]);
  rows.push(["Descriptors Total:", String(header.descriptorsTotal)]);
  rows.push(["Descriptors Offset:", String(header.descriptorsOffset)]);
  rows.push(["Descriptors Size:", readableSize(header.descriptorsSize)]);
  rows.push(["Data Offset:", String(header.dataOffset)]);
  rows.push(["Data Size:", readableSize(header.dataSize)]);
  return tabulate(rows, 1);
}

/** One row of the object listing, as the cells `siftool list` prints. */
export interface SifListRow {
  /** Object ID. */
  id: string;
  /** Group ID or `NONE`. */
  group: string;
  /** Linked ID, `NONE`, or `<id> (G)` for a group link. */
  link: string;
  /** `start-end` byte positions. */
  position: string;
  /** The type column (`FS (Squashfs/*System/amd64)`, `Signature (SHA-256)`, ...). */
  type: string;
}

/** The type column of `siftool list` for an object. */
export function describeType(object: SifObject): string {
  if (object.partition) {
    const p = object.partition;
    return `${object.typeName} (${p.fsTypeName}/${p.partTypeName}/${p.arch})`;
  }
  if (object.signature) return `${object.typeName} (${object.signature.hashTypeName})`;
  if (object.cryptoMessage) {
    const c = object.cryptoMessage;
    return `${object.typeName} (${c.formatTypeName}/${c.messageTypeName})`;
  }
  if (object.sbom) return `${object.typeName} (${object.sbom.formatName})`;
  return object.typeName;
}

/** The object listing as rows of display cells (for tables and `--json`). */
export function listRows(objects: readonly SifObject[]): SifListRow[] {
  return objects.map((o) => ({
    id: String(o.id),
    group: o.groupId === 0 ? "NONE" : String(o.groupId),
    link: o.linkedId === 0 ? "NONE" : o.linkIsGroup ? `${o.linkedId} (G)` : String(o.linkedId),
    position: `${o.offset}-${o.offset + o.size}`,
    type: describeType(o),
  }));
}

const RULE = "-".repeat(78);

/** The object listing exactly as `siftool list` prints it. */
export function formatObjectList(objects: readonly SifObject[]): string {
  let out = `${RULE}\n`;
  out += `${"ID".padEnd(4)} ${"|GROUP".padEnd(8)} ${"|LINK".padEnd(8)} ` +
    `${"|SIF POSITION (start-end)".padEnd(26)} |TYPE\n`;
  out += `${RULE}\n`;
  for (const o of objects) {
    const group = o.groupId === 0 ? "NONE" : String(o.groupId);
    const link = o.linkedId === 0
      ? `|${"NONE".padEnd(7)} `
      : o.linkIsGroup
      ? `|${String(o.linkedId).padEnd(3)} (G) `
      : `|${String(o.linkedId).padEnd(7)} `;
    out += `${String(o.id).padEnd(4)} |${group.padEnd(7)} ${link}` +
      `${`|${o.offset}-${o.offset + o.size} `.padEnd(26)} |${describeType(o)}\n`;
  }
  return out;
}

/** One object's details exactly as `siftool info` prints them. */
export function formatObjectInfo(object: SifObject): string {
  const rows: string[][] = [];
  const row = (label: string, value: string) => rows.push(["", label, value]);
  row("Data Type:", object.typeName);
  row("ID:", String(object.id));
  row("Group ID:", object.groupId === 0 ? "NONE" : String(object.groupId));
  row(
    "Linked ID:",
    object.linkedId === 0
      ? "NONE"
      : object.linkIsGroup
      ? `${object.linkedId} (G)`
      : String(object.linkedId),
  );
  row("Offset:", String(object.offset));
  row("Size:", String(object.size));
  if (object.createdAt !== GO_ZERO_TIME) row("Created At:", formatGoTime(object.createdAt));
  if (object.modifiedAt !== GO_ZERO_TIME) row("Modified At:", formatGoTime(object.modifiedAt));
  if (object.name !== "") row("Name:", object.name);
  if (object.partition) {
    row("Filesystem Type:", object.partition.fsTypeName);
    row("Partition Type:", object.partition.partTypeName);
    row("Architecture:", object.partition.arch);
  } else if (object.signature) {
    row("Hash Type:", object.signature.hashTypeName);
    if (object.signature.entity) row("Entity:", object.signature.entity);
  } else if (object.cryptoMessage) {
    row("Format Type:", object.cryptoMessage.formatTypeName);
    row("Message Type:", object.cryptoMessage.messageTypeName);
  } else if (object.sbom) {
    row("Format:", object.sbom.formatName);
  } else if (object.digest !== undefined) {
    row("Digest:", object.digest);
  }
  return tabulate(rows, 2);
}
