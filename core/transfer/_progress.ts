/**
 * One transfer's side of the progress events: starts lazily, so the first event can carry the
 * resume point and the size once they are known.
 * @module
 */

import { nextProgressId, type ProgressSink } from "../progress_events.ts";

/** See {@link track}. */
export interface Tracker {
  /** The id in the events. */
  readonly id: string;
  /** The position is `bytes` (the first call starts the transfer with resumedFrom = bytes). */
  at(bytes: number): void;
  /** `bytes` more arrived. */
  add(bytes: number): void;
  /** The expected size. */
  setTotal(total: number | undefined): void;
  /** Everything so far was dropped. */
  restart(): void;
  /** No more events (idempotent; silent when nothing was emitted). */
  end(): void;
}

/** A tracker emitting to `sink`; `parent` makes it a part of another transfer. */
export function track(
  sink: ProgressSink,
  label: string,
  total?: number,
  parent?: string,
): Tracker {
  const id = nextProgressId();
  let started = false, ended = false;
  let known = total;
  const start = (resumedFrom: number) => {
    started = true;
    sink.emit({ type: "start", id, label, total: known, resumedFrom, parent });
  };
  return {
    id,
    at(bytes) {
      if (ended) return;
      if (!started) start(bytes);
      else sink.emit({ type: "position", id, bytes });
    },
    add(bytes) {
      if (ended) return;
      if (!started) start(0);
      sink.emit({ type: "advance", id, bytes });
    },
    setTotal(t) {
      if (ended || t === known) return;
      known = t;
      if (started) sink.emit({ type: "total", id, total: t });
    },
    restart() {
      if (ended) return;
      if (!started) start(0);
      else sink.emit({ type: "restart", id });
    },
    end() {
      if (ended) return;
      ended = true;
      // Nothing was shown for a transfer that never began (a 404): nothing to end either.
      if (started) sink.emit({ type: "end", id });
    },
  };
}
