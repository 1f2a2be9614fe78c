// Simulated time. Rule: simulated now = startTime + (real elapsed ms) × timeScale. Every timestamp the
// simulator writes (creationTimestamp, startTime, conditions, audit records) reads this clock; API
// requests themselves are served in real time. Timers are set in simulated ms and fire after
// simulated/timeScale real ms.

export class SimClock {
  private readonly realStart = performance.now();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    readonly startTime: number,
    readonly timeScale: number,
  ) {
    if (!(timeScale > 0))
      throw new Error(`timeScale must be a positive number of simulated ms per real ms, got ${timeScale}`);
  }

  /** Simulated epoch ms. */
  now(): number {
    return Math.floor(this.startTime + (performance.now() - this.realStart) * this.timeScale);
  }

  /** RFC 3339 with second precision, as Kubernetes serializes metav1.Time. */
  iso(at = this.now()): string {
    return new Date(at).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  /** Real ms that `simulatedMs` take. */
  toReal(simulatedMs: number): number {
    return simulatedMs / this.timeScale;
  }

  /** Runs `fn` after `simulatedMs` of simulated time; returns a cancel function. */
  after(simulatedMs: number, fn: () => void): () => void {
    if (this.closed) return () => undefined;
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        if (!this.closed) fn();
      },
      Math.max(0, this.toReal(simulatedMs)),
    );
    this.timers.add(t);
    return () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  sleep(simulatedMs: number): Promise<void> {
    return new Promise((resolve) => this.after(simulatedMs, resolve));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
