// Logs and the progress line, on stderr: text for people, JSON lines for log pipelines.
import type { Progress } from "./fanout";

export type LogFormat = "text" | "json";
export type LogLevel = "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

export function streamLogger(
  format: LogFormat,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  return {
    log(level, message, fields) {
      if (format === "json") {
        write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
      } else {
        const prefix = level === "info" ? "" : `${level.toUpperCase()}: `;
        write(`${prefix}${message}\n`);
      }
    },
  };
}

export const silentLogger: Logger = { log() {} };

export function describeProgress(p: Progress): string {
  const extra = [
    p.failed ? `${p.failed} failed` : "",
    p.skipped ? `${p.skipped} skipped` : "",
    p.foreign ? `${p.foreign} other active Job(s) holding slots` : "",
  ].filter(Boolean);
  return `progress: ${p.done}/${p.total} done${extra.length ? ` (${extra.join(", ")})` : ""}, ${p.inFlight} in flight, ${p.queued} queued`;
}

/** Calls `emit` at most once per `intervalMs`; `flush` emits the latest value unconditionally. */
export class RateLimited<T> {
  private last = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly intervalMs: number,
    private readonly emit: (value: T) => void,
    private readonly now: () => number = Date.now,
  ) {}
  offer(value: T): void {
    const t = this.now();
    if (t - this.last >= this.intervalMs) {
      this.last = t;
      this.emit(value);
    }
  }
  flush(value: T): void {
    this.last = this.now();
    this.emit(value);
  }
}
