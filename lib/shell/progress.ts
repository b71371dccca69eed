/**
 * Progress of long transfers (`.backup`, `.dump`, `.restore`, `.boot`):
 * bytes so far, the total when known, and the rate, redrawn in place on one
 * terminal line at most every {@link REDRAW_MS}; at the end one summary line
 * stays. When stdout is not a terminal nothing is written at all, so piped
 * output stays exactly rqlite's.
 *
 * {@link countBytes} wraps a byte stream so the bytes are counted as they
 * flow: nothing is buffered here, whatever the file size.
 *
 * @module
 */

const REDRAW_MS = 100;

/** `n` bytes as `812 B`, `12.3 KiB`, `4.56 MiB`, `1.02 GiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${n} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

/** Where progress goes; `enabled` false makes every call a no-op. */
export interface ProgressSink {
  readonly enabled: boolean;
  write(text: string): void;
}

/** One transfer's meter. */
export class Progress {
  #bytes = 0;
  #lastDraw = -Infinity;
  readonly #started: number;

  constructor(
    readonly label: string,
    readonly sink: ProgressSink,
    readonly total?: number,
    readonly now: () => number = () => performance.now(),
  ) {
    this.#started = now();
  }

  /** Bytes counted so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Counts `n` more bytes and redraws if it is time. */
  add(n: number): void {
    this.#bytes += n;
    const t = this.now();
    if (this.sink.enabled && t - this.#lastDraw >= REDRAW_MS) {
      this.#lastDraw = t;
      this.sink.write(`\r${this.line(t)}\x1b[K`);
    }
  }

  /** The meter's text at time `t`. */
  line(t = this.now()): string {
    const seconds = Math.max(0.001, (t - this.#started) / 1000);
    const rate = `${formatBytes(this.#bytes / seconds)}/s`;
    const of = this.total !== undefined && this.total > 0
      ? ` of ${formatBytes(this.total)} (${
        Math.min(100, Math.floor(this.#bytes * 100 / this.total))
      }%)`
      : "";
    return `${this.label}: ${formatBytes(this.#bytes)}${of}, ${rate}`;
  }

  /** Replaces the meter with a summary line (`ok`) or clears it. */
  finish(ok: boolean): void {
    if (!this.sink.enabled) return;
    const t = this.now();
    const seconds = ((t - this.#started) / 1000).toFixed(1);
    if (ok) {
      const rate = formatBytes(this.#bytes / Math.max(0.001, (t - this.#started) / 1000));
      this.sink.write(
        `\r${this.label}: ${formatBytes(this.#bytes)} in ${seconds} s (${rate}/s)\x1b[K\n`,
      );
    } else this.sink.write("\r\x1b[K");
  }
}

/** `stream` passed through unchanged while `progress` counts its bytes. */
export function countBytes(
  stream: ReadableStream<Uint8Array>,
  progress: Progress,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        progress.add(chunk.byteLength);
        controller.enqueue(chunk);
      },
    }),
  );
}
