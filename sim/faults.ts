// Fault injection: per verb and resource error rates (500/503/504, 429 with Retry-After), latency,
// connection resets, expired continue tokens, and periodic drops of watch streams. The dice are a
// seeded PRNG, so a run with the same seed and the same request order injects the same faults.
import type { FaultConfig, FaultControl, FaultRule, ResourceName, Verb } from "./types";

/** mulberry32: small, fast, deterministic. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultDecision =
  | { kind: "none"; latencyMs: number }
  | {
      kind: "error";
      code: 429 | 500 | 503 | 504;
      retryAfterSeconds: number;
      plainText: boolean;
      latencyMs: number;
    }
  | { kind: "reset"; latencyMs: number }
  | { kind: "expireContinue"; latencyMs: number };

export class FaultInjector implements FaultControl {
  private config: FaultConfig = {};
  private random: () => number;
  private counts: Record<string, number> = {};
  private dropTimer: NodeJS.Timeout | undefined;
  /** Open watch streams, cut when dropWatchEverySeconds fires. */
  readonly watches = new Set<(mode: "reset" | "close") => void>();

  constructor(private readonly defaultSeed: number) {
    this.random = seededRandom(defaultSeed);
  }

  set(config: FaultConfig): void {
    this.config = structuredClone(config);
    this.random = seededRandom(config.seed ?? this.defaultSeed);
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.dropTimer = undefined;
    const every = config.dropWatchEverySeconds ?? 0;
    if (every > 0) {
      this.dropTimer = setInterval(() => {
        for (const drop of [...this.watches]) {
          this.count("watch-drop");
          drop(config.dropWatchMode ?? "reset");
        }
      }, every * 1000);
      this.dropTimer.unref();
    }
  }

  clear(): void {
    this.set({});
  }

  current(): FaultConfig {
    return structuredClone(this.config);
  }

  injected(): Record<string, number> {
    return { ...this.counts };
  }

  close(): void {
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.watches.clear();
  }

  private count(kind: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
  }

  private matching(verb: Verb, resource: string): FaultRule[] {
    return (this.config.rules ?? []).filter(
      (r) =>
        (!r.verbs || r.verbs.includes(verb)) &&
        (!r.resources || r.resources.includes(resource as ResourceName)),
    );
  }

  /** Rolls the dice for one request. */
  decide(verb: Verb, resource: string, hasContinue: boolean): FaultDecision {
    const rules = this.matching(verb, resource);
    if (rules.length === 0) return { kind: "none", latencyMs: 0 };
    const latencyMs = rules.reduce((sum, r) => sum + (r.latencyMs ?? 0), 0);
    if (latencyMs > 0) this.count("latency");
    for (const r of rules) {
      if (r.resetRate && this.random() < r.resetRate) {
        this.count("reset");
        return { kind: "reset", latencyMs };
      }
      if (hasContinue && r.expireContinueRate && this.random() < r.expireContinueRate) {
        this.count("expire-continue");
        return { kind: "expireContinue", latencyMs };
      }
      if (r.errorRate && this.random() < r.errorRate) {
        const codes = r.errorCodes && r.errorCodes.length > 0 ? r.errorCodes : [500 as const];
        const code = codes[Math.floor(this.random() * codes.length)];
        this.count(`error:${code}`);
        return {
          kind: "error",
          code,
          retryAfterSeconds: r.retryAfterSeconds ?? 1,
          plainText: r.plainText429 === true,
          latencyMs,
        };
      }
    }
    return { kind: "none", latencyMs };
  }
}

/** Bounds of a randomized fault schedule (chaos runs): each rate is drawn between 0 and its bound. */
export interface FaultScheduleBounds {
  /** Share of requests answered 500/503/429. */
  maxErrorRate: number;
  /** Share of requests whose connection is reset. */
  maxResetRate: number;
  /** Watch streams are cut every 1..this many seconds (or never, one draw in four). */
  maxDropWatchEverySeconds: number;
}

export const CHAOS_FAULT_BOUNDS: FaultScheduleBounds = {
  maxErrorRate: 0.1,
  maxResetRate: 0.02,
  maxDropWatchEverySeconds: 5,
};

/**
 * A seeded fault configuration for one chaos run: API errors (5xx, and 429 with Retry-After, sometimes plain text as
 * kube-apiserver's flow control sends it), connection resets, and watch drops. The same seed gives the same
 * configuration, and the injector's dice are seeded from it too, so a failing run can be replayed.
 */
export function randomFaultConfig(
  seed: number,
  bounds: FaultScheduleBounds = CHAOS_FAULT_BOUNDS,
): FaultConfig {
  const random = seededRandom(seed ^ 0xc4a05);
  const errorRate = Number((random() * bounds.maxErrorRate).toFixed(3));
  const resetRate = Number((random() * bounds.maxResetRate).toFixed(3));
  const drop = random() < 0.25 ? 0 : 1 + Math.floor(random() * bounds.maxDropWatchEverySeconds);
  return {
    seed,
    rules: [
      { errorRate, errorCodes: [500, 503, 429], retryAfterSeconds: 1 },
      {
        verbs: ["create"],
        errorRate: errorRate / 2,
        errorCodes: [429],
        plainText429: true,
        retryAfterSeconds: 1,
      },
      { resetRate },
    ],
    dropWatchEverySeconds: drop,
    dropWatchMode: random() < 0.5 ? "reset" : "close",
  };
}
