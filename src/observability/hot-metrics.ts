// Counters and histograms for the request path. prom-client validates and hashes the label
// set on every call, even on a child from `labels()`; these bind a child to its labels once,
// so a hot-path update is a number increment. They export prom-client's JSON shape, so the
// registry prints them and cluster aggregation sums them like any other metric.

type Labels = Record<string, string>;
interface Value { labels: Labels; value: number; metricName?: string }
interface MetricJson { name: string; help: string; type: string; values: Value[]; aggregator: 'sum' }

export interface CounterChild { inc(n?: number): void }
export interface HistogramChild { observe(seconds: number): void }

function keyOf(labels: Labels): string {
  let k = '';
  for (const name of Object.keys(labels).sort()) k += `${name}\u0000${labels[name]}\u0001`;
  return k;
}

class CounterCell implements CounterChild {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(n = 1): void {
    this.value += n;
  }
}

export class HotCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum' as const;
  private readonly cells = new Map<string, CounterCell>();

  constructor(readonly name: string, readonly help: string) {}

  /** Memoised per label set: call once, keep the child. */
  labels(labels: Labels = {}): CounterChild {
    const k = keyOf(labels);
    let cell = this.cells.get(k);
    if (!cell) this.cells.set(k, (cell = new CounterCell({ ...labels })));
    return cell;
  }

  async get(): Promise<MetricJson> {
    return {
      name: this.name, help: this.help, type: this.type, aggregator: this.aggregator,
      values: [...this.cells.values()].map((c) => ({ labels: c.labels, value: c.value })),
    };
  }
}

class HistogramCell implements HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

export class HotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum' as const;
  private readonly cells = new Map<string, HistogramCell>();

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  labels(labels: Labels = {}): HistogramChild {
    const k = keyOf(labels);
    let cell = this.cells.get(k);
    if (!cell) this.cells.set(k, (cell = new HistogramCell({ ...labels }, this.bounds)));
    return cell;
  }

  async get(): Promise<MetricJson> {
    const values: Value[] = [];
    for (const cell of this.cells.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += cell.counts[i]!;
        values.push({ labels: { ...cell.labels, le: String(le) }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...cell.labels, le: '+Inf' }, value: cell.count, metricName: `${this.name}_bucket` });
      values.push({ labels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: cell.labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
