/**
 * Progress as events: the transfer layer says what happens to the bytes, and whoever wants to show
 * it (cli/render/progress.ts on a terminal) draws it. core/ never draws, so a library user, a test or
 * a JSON consumer can watch a transfer without a terminal.
 *
 * A transfer emits `start` once, then `advance` (bytes added) and `position` (an absolute position,
 * after a resume or a retry), `total` when the size becomes known, `restart` when the bytes on disk
 * are dropped and counting starts again from zero, and `end` once. A parallel download also emits
 * one `start`…`end` per part with `parent` set to the download's id: a part's advances count
 * towards its parent too, so the parent never receives them twice.
 * @module
 */

/** What happened to a transfer (see the module documentation for the order). */
export type ProgressEvent =
  | {
    /** A transfer (or one part of it, with `parent`) began. */
    readonly type: "start";
    /** Unique within the process (see {@link nextProgressId}). */
    readonly id: string;
    /** What people see: a file name, an image name, `part 3/64`. */
    readonly label: string;
    /** Expected bytes, when known. */
    readonly total?: number;
    /** Bytes already on disk from an earlier attempt: the position starts here (default 0). */
    readonly resumedFrom?: number;
    /** The id of the transfer this is a part of. */
    readonly parent?: string;
  }
  | {
    /** `bytes` more were transferred. */
    readonly type: "advance";
    readonly id: string;
    readonly bytes: number;
  }
  | {
    /** The position is now `bytes` (a resume point, or the start of a retried request body). */
    readonly type: "position";
    readonly id: string;
    readonly bytes: number;
  }
  | {
    /** The expected size became known or changed. */
    readonly type: "total";
    readonly id: string;
    readonly total?: number;
  }
  | {
    /** Everything so far was dropped: counting starts again at 0. */
    readonly type: "restart";
    readonly id: string;
  }
  | {
    /** The transfer finished, failed or was cancelled; no more events carry this id. */
    readonly type: "end";
    readonly id: string;
  };

/** Receives progress events; `emit` must be cheap and never throw. */
export interface ProgressSink {
  /** Take one event. */
  emit(event: ProgressEvent): void;
}

/** A sink that drops every event: the default when nobody watches. */
export const NO_PROGRESS: ProgressSink = Object.freeze({ emit() {} });

let counter = 0;

/** A new id for {@link ProgressEvent}s, unique within the process. */
export function nextProgressId(): string {
  return `t${++counter}`;
}
