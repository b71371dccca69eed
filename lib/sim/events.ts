/**
 * The simulator's one source of time: a discrete-event queue.
 *
 * Every timer, message delivery, disk completion, client request and fault
 * is an event `(timeMs, seq) -> fn` in one binary heap. Events run in time
 * order and, at equal times, in the order they were scheduled (`seq`), so a
 * run is a pure function of its seed. Nothing here reads a real clock.
 *
 * A {@link Scope} groups the events of one node incarnation: killing it
 * (a crash) silently drops every event it scheduled that has not yet run,
 * so a crashed process never observes anything again. {@link SimClock} is a
 * node's `Clock` over a scope.
 *
 * @module
 */

import type { Clock } from "../node/interfaces.ts";

interface Event {
  readonly timeMs: number;
  readonly seq: number;
  fn: (() => void) | undefined;
}

/** Cancels a scheduled event (no-op once it ran or was cancelled). */
export type Cancel = () => void;

/** A min-heap of events ordered by (timeMs, seq). */
export class EventQueue {
  #heap: Event[] = [];
  #seq = 0;
  #nowMs = 0;
  #executed = 0;
  #live = 0;

  /** Current simulated time in milliseconds. */
  get nowMs(): number {
    return this.#nowMs;
  }

  /** Events run so far. */
  get executed(): number {
    return this.#executed;
  }

  /** Events scheduled and neither run nor cancelled. */
  get pending(): number {
    return this.#live;
  }

  /** Runs `fn` at `nowMs + delayMs` (negative or NaN delays count as 0). */
  after(delayMs: number, fn: () => void): Cancel {
    const delay = delayMs > 0 ? delayMs : 0;
    return this.at(this.#nowMs + delay, fn);
  }

  /** Runs `fn` at absolute time `timeMs` (clamped to now). */
  at(timeMs: number, fn: () => void): Cancel {
    if (!Number.isFinite(timeMs)) throw new RangeError(`event time must be finite, got ${timeMs}`);
    const event: Event = { timeMs: Math.max(timeMs, this.#nowMs), seq: this.#seq++, fn };
    this.#push(event);
    this.#live++;
    return () => {
      if (event.fn !== undefined) {
        event.fn = undefined;
        this.#live--;
      }
    };
  }

  /** Time of the next live event, or Infinity. */
  peekTimeMs(): number {
    this.#dropCancelledHead();
    return this.#heap[0]?.timeMs ?? Infinity;
  }

  /**
   * Runs events in order while their time is <= `untilMs` and fewer than
   * `maxEvents` ran in this call; then sets the clock to `untilMs` when the
   * queue reached it. Returns the number of events run.
   */
  run(untilMs: number, maxEvents = Infinity): number {
    let ran = 0;
    while (ran < maxEvents) {
      this.#dropCancelledHead();
      const head = this.#heap[0];
      if (head === undefined || head.timeMs > untilMs) {
        if (Number.isFinite(untilMs)) this.#nowMs = Math.max(this.#nowMs, untilMs);
        break;
      }
      this.#pop();
      const fn = head.fn;
      head.fn = undefined;
      this.#live--;
      this.#nowMs = head.timeMs;
      this.#executed++;
      ran++;
      fn?.();
    }
    return ran;
  }

  /**
   * Runs events until `predicate()` holds (checked after every event), time
   * passes `untilMs`, or `maxEvents` ran. Returns whether the predicate held.
   */
  runUntil(predicate: () => boolean, untilMs: number, maxEvents = Infinity): boolean {
    let ran = 0;
    while (!predicate()) {
      if (ran >= maxEvents) return false;
      if (this.peekTimeMs() > untilMs) {
        this.#nowMs = Math.max(this.#nowMs, untilMs);
        return predicate();
      }
      ran += this.run(untilMs, 1);
    }
    return true;
  }

  #dropCancelledHead(): void {
    while (this.#heap.length > 0 && this.#heap[0]?.fn === undefined) this.#pop();
  }

  #less(a: Event, b: Event): boolean {
    return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.seq < b.seq);
  }

  #push(event: Event): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Event;
      if (!this.#less(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  #pop(): Event | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && this.#less(heap[r] as Event, heap[l] as Event)) child = r;
      const c = heap[child] as Event;
      if (!this.#less(c, last)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/**
 * The events of one process incarnation. After {@link kill}, events it
 * scheduled never run and new ones are ignored.
 */
export class Scope {
  #alive = true;

  constructor(readonly queue: EventQueue, readonly name: string) {}

  get alive(): boolean {
    return this.#alive;
  }

  /** Schedules `fn` in this scope; it runs only while the scope is alive. */
  after(delayMs: number, fn: () => void): Cancel {
    if (!this.#alive) return noop;
    // Dead events stay in the heap until their time and are skipped then:
    // cheaper than tracking every pending event per scope.
    return this.queue.after(delayMs, () => {
      if (this.#alive) fn();
    });
  }

  /** Drops every pending event of this scope, now and forever. Idempotent. */
  kill(): void {
    this.#alive = false;
  }
}

function noop(): void {}

/**
 * A node's {@link Clock}: simulated time, timers bound to the node's scope.
 * `rate` models a clock that runs fast (> 1) or slow (< 1): the node's
 * milliseconds pass `rate` times as fast as simulated ones.
 */
export class SimClock implements Clock {
  constructor(readonly scope: Scope, readonly rate = 1) {
    if (!(rate > 0)) throw new RangeError(`clock rate must be positive, got ${rate}`);
  }

  nowMs(): number {
    return this.scope.queue.nowMs * this.rate;
  }

  after(delayMs: number, fn: () => void): Cancel {
    if (!(delayMs >= 0)) throw new RangeError(`timer delay must be >= 0, got ${delayMs}`);
    return this.scope.after(delayMs / this.rate, fn);
  }
}
