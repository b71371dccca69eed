/**
 * A small Prometheus registry: counters, gauges and histograms with fixed
 * buckets, rendered in the text exposition format 0.0.4 for `GET /metrics`.
 *
 * Why not a library: the needs are small and the write path is hot. An
 * observation is an array increment on a series found once (callers keep
 * the {@link Series} handle; label values are fixed, bounded sets such as
 * the route of an endpoint), and gauges that mirror state the node already
 * keeps are read only when scraped ({@link Registry.onCollect}).
 *
 * Bounds: a family holds at most `maxSeries` label combinations (default
 * 64); asking for more is a programming error (an unbounded label such as a
 * raw path) and throws, so it shows in tests rather than as memory growth.
 *
 * @module
 */

/** Metric kinds of the exposition format. */
export type MetricKind = "counter" | "gauge" | "histogram";

/** One label combination of a family. */
export class Series {
  value = 0;
  /** Histograms: count per bucket (not cumulative), then the +Inf bucket. */
  readonly buckets: number[];
  sum = 0;
  count = 0;

  constructor(readonly labels: string, bucketCount: number) {
    this.buckets = new Array(bucketCount + 1).fill(0);
  }
}

/** A named metric with its series. */
export class Family {
  readonly #series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: MetricKind,
    readonly labelNames: readonly string[],
    readonly bucketBounds: readonly number[],
    readonly maxSeries: number,
  ) {}

  /** The series for `labelValues` (in labelNames order), created on first use. */
  series(...labelValues: string[]): Series {
    if (labelValues.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values`);
    }
    const key = labelValues.join("\u0000");
    let s = this.#series.get(key);
    if (s === undefined) {
      if (this.#series.size >= this.maxSeries) {
        throw new Error(
          `${this.name}: more than ${this.maxSeries} label combinations; labels must be bounded`,
        );
      }
      s = new Series(renderLabels(this.labelNames, labelValues), this.bucketBounds.length);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Adds `by` (>= 0) to a counter or gauge series. */
  inc(by = 1, ...labelValues: string[]): void {
    if (this.kind === "counter" && !(by >= 0)) throw new Error(`${this.name}: counters only grow`);
    this.series(...labelValues).value += by;
  }

  /** Sets a gauge series. */
  set(value: number, ...labelValues: string[]): void {
    this.series(...labelValues).value = value;
  }

  /** Records one histogram observation. */
  observe(value: number, ...labelValues: string[]): void {
    observe(this, this.series(...labelValues), value);
  }

  /** The family's lines in the exposition format. */
  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.kind}`);
    for (const s of this.#series.values()) {
      if (this.kind !== "histogram") {
        out.push(`${this.name}${braces(s.labels)} ${formatValue(s.value)}`);
        continue;
      }
      let cumulative = 0;
      for (let i = 0; i < this.bucketBounds.length; i++) {
        cumulative += s.buckets[i]!;
        const le = `le="${formatValue(this.bucketBounds[i]!)}"`;
        out.push(`${this.name}_bucket${braces(join(s.labels, le))} ${cumulative}`);
      }
      cumulative += s.buckets[this.bucketBounds.length]!;
      out.push(`${this.name}_bucket${braces(join(s.labels, 'le="+Inf"'))} ${cumulative}`);
      out.push(`${this.name}_sum${braces(s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${braces(s.labels)} ${s.count}`);
    }
  }
}

/** Records `value` in histogram series `s` of `family`. */
export function observe(family: Family, s: Series, value: number): void {
  const bounds = family.bucketBounds;
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  s.buckets[i]!++;
  s.sum += value;
  s.count++;
}

/** Options of a family. */
export interface FamilyOptions {
  readonly labels?: readonly string[];
  /** Histogram upper bounds, ascending. */
  readonly buckets?: readonly number[];
  readonly maxSeries?: number;
}

/** Latency buckets in seconds, 0.1 ms to 10 s. */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** All metrics of one node. */
export class Registry {
  readonly #families = new Map<string, Family>();
  readonly #collectors: (() => void)[] = [];

  /** Defines a family (names are unique; counters must end in `_total`). */
  define(name: string, help: string, kind: MetricKind, options: FamilyOptions = {}): Family {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    if (this.#families.has(name)) throw new Error(`metric ${name} defined twice`);
    if (kind === "counter" && !name.endsWith("_total")) {
      throw new Error(`counter ${name} must end in _total`);
    }
    const buckets = kind === "histogram" ? options.buckets ?? LATENCY_BUCKETS_S : [];
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must ascend`);
    }
    for (const l of options.labels ?? []) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l) || l === "le") {
        throw new Error(`${name}: invalid label ${l}`);
      }
    }
    const f = new Family(name, help, kind, options.labels ?? [], buckets, options.maxSeries ?? 64);
    this.#families.set(name, f);
    return f;
  }

  /** Runs `fn` before every render (to copy gauges from state kept elsewhere). */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** The exposition text (ends with a newline). */
  render(): string {
    for (const fn of this.#collectors) fn();
    const out: string[] = [];
    for (const f of this.#families.values()) f.render(out);
    return out.join("\n") + "\n";
  }
}

/** Content-Type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function renderLabels(names: readonly string[], values: readonly string[]): string {
  return names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`).join(",");
}

function join(a: string, b: string): string {
  return a === "" ? b : `${a},${b}`;
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Numbers as Prometheus writes them (+Inf, -Inf, NaN; integers without a fraction). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
