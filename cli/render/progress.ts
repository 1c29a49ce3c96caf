/**
 * Progress bars on stderr, drawn from the transfer layer's events (core/progress_events.ts): bytes,
 * rate and ETA, one line per transfer, plus one per part while a parallel download has several in
 * flight. The CLI builds one renderer per process, only on a TTY and not with --quiet or --json.
 *
 * Messages go through the renderer too ({@link ProgressRenderer.sink}): it clears the bars, writes
 * the message on its own line, and draws the bars again below it, so a warning never lands on the
 * end of a bar line.
 * @module
 */

import { sanitize, type TextSink } from "../../core/log.ts";
import type { ProgressEvent, ProgressSink } from "../../core/progress_events.ts";

/** Format bytes for people: `12.3 MiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** Format seconds as `1:02:03` or `2:03`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "--:--";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** What one line shows. */
export interface BarState {
  /** The label. */
  label: string;
  /** Bytes so far. */
  value: number;
  /** Expected bytes. */
  total?: number;
  /** When the rate started counting (ms). */
  start: number;
  /** The value then: a resumed transfer does not claim the skipped bytes as speed. */
  startValue: number;
}

/** One rendered line: label, bar, bytes, rate, ETA; never wider than `columns - 1`. */
export function renderLine(b: BarState, now: number, columns = 80): string {
  // Past 100% is a counting error somewhere: show the total rather than a bar that overflows.
  const value = b.total !== undefined ? Math.min(b.value, b.total) : b.value;
  const secs = Math.max((now - b.start) / 1000, 0.001);
  const rate = Math.max(0, value - b.startValue) / secs;
  const eta = b.total && rate > 0 ? (b.total - value) / rate : NaN;
  const size = b.total ? `${formatBytes(value)}/${formatBytes(b.total)}` : formatBytes(value);
  const tail = ` ${size} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
  const label = b.label.length > 24 ? `…${b.label.slice(-23)}` : b.label.padEnd(24);
  // A line as wide as the terminal wraps, and the cursor moves of the next frame then miss.
  const max = Math.max(20, columns - 1);
  const width = max - label.length - tail.length - 3;
  if (width < 10) return `${label.trimEnd()}${tail}`.slice(0, max);
  const frac = b.total ? Math.min(1, value / b.total) : 0;
  const full = Math.round(frac * width);
  return `${label} [${"#".repeat(full)}${" ".repeat(width - full)}]${tail}`;
}

/** Options of {@link createProgressRenderer}. */
export interface ProgressRendererOptions {
  /** The terminal (stderr). */
  sink: TextSink;
  /** Clock in ms (tests inject one). */
  now?: () => number;
  /** Minimum ms between redraws (default 100). */
  interval?: number;
  /** Columns (default: the sink's terminal width, else 80). */
  columns?: number;
}

/** Draws progress events; messages written to {@link ProgressRenderer.sink} go around the bars. */
export interface ProgressRenderer extends ProgressSink {
  /** A sink for the logger: each write clears the bars, prints, and draws them again. */
  readonly sink: TextSink;
  /** The state of a transfer still in flight (tests read it). */
  bar(id: string): Readonly<BarState> | undefined;
}

interface Live extends BarState {
  id: string;
  parent?: Live;
  children: Set<Live>;
}

/** A renderer drawing on `options.sink`. */
export function createProgressRenderer(options: ProgressRendererOptions): ProgressRenderer {
  const out = options.sink;
  const now = options.now ?? (() => performance.now());
  const interval = options.interval ?? 100;
  const columns = () => options.columns ?? out.columns?.() ?? 80;
  const live = new Map<string, Live>();
  /** Top-level transfers in the order they started. */
  const roots = new Set<Live>();
  /** Lines on screen; the cursor sits at the end of the last one. */
  let drawn = 0;
  let last = -Infinity;

  const lines = (t: number): string[] => {
    const cols = columns();
    const rows: string[] = [];
    for (const r of roots) {
      // One part in flight says nothing the total line does not.
      if (r.children.size > 1) { for (const c of r.children) rows.push(renderLine(c, t, cols)); }
      rows.push(renderLine(r, t, cols));
    }
    return rows;
  };
  /** Back to the start of the first bar line, everything below it cleared. */
  const erase = () => (drawn > 1 ? `\x1b[${drawn - 1}A` : "") + "\r\x1b[J";
  function draw(force = false, before = "") {
    const t = now();
    if (!force && !before && t - last < interval) return;
    last = t;
    const rows = lines(t);
    let text = drawn > 0 ? erase() : "";
    text += before;
    // Each line cleared as it is drawn: the frame replaces the last one in place.
    text += rows.map((l) => `\x1b[2K${l}`).join("\n");
    if (text) out.write(text);
    drawn = rows.length;
  }
  /** Count `delta` bytes on a bar and on the transfer it is part of. */
  const move = (b: Live, delta: number) => {
    b.value += delta;
    if (b.parent) b.parent.value += delta;
  };

  const renderer: ProgressRenderer = {
    emit(e: ProgressEvent) {
      if (e.type === "start") {
        const parent = e.parent ? live.get(e.parent) : undefined;
        const from = e.resumedFrom ?? 0;
        const b: Live = {
          id: e.id,
          // Labels can come from remote names: no control character reaches the terminal.
          label: sanitize(e.label, true),
          value: from,
          total: e.total,
          start: now(),
          startValue: from,
          parent,
          children: new Set(),
        };
        live.set(e.id, b);
        if (parent) parent.children.add(b);
        else roots.add(b);
        draw(!parent);
        return;
      }
      const b = live.get(e.id);
      if (!b) return;
      switch (e.type) {
        case "advance":
          move(b, e.bytes);
          draw();
          break;
        case "position":
          move(b, e.bytes - b.value);
          // The rate counts from here, so a resumed or retried transfer does not claim old bytes.
          b.startValue = b.value;
          b.start = now();
          draw();
          break;
        case "total":
          b.total = e.total;
          break;
        case "restart":
          for (const c of b.children) live.delete(c.id);
          b.children.clear();
          if (b.parent) b.parent.value -= b.value;
          b.value = b.startValue = 0;
          b.start = now();
          draw(true);
          break;
        case "end":
          live.delete(e.id);
          if (b.parent) {
            b.parent.children.delete(b);
            draw(true);
          } else {
            // The finished line stays on screen above the bars still running.
            roots.delete(b);
            const text = renderLine(b, now(), columns());
            draw(true, `\x1b[2K${text}\n`);
          }
          break;
      }
    },
    sink: {
      write(text) {
        if (drawn === 0) return out.write(text);
        draw(true, text.endsWith("\n") ? text : `${text}\n`);
      },
      get isTerminal() {
        return out.isTerminal;
      },
      columns: () => out.columns?.(),
    },
    bar: (id) => live.get(id),
  };
  return renderer;
}
