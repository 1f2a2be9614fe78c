// The fan-out as a pure state machine: which node may get a Job now, given the slots held by this run's Jobs and by
// other active Jobs of the same owner. No I/O and no clock, so pacing rules are tested directly.
import type { NodeResult } from "../kube/jobStatus";
import { PARALLELISM_MIN } from "../chart/parallelism";

/** queued → dispatching (slot reserved, checks and create in progress) → active (Job exists) → done. */
export type NodeState =
  | { kind: "queued" }
  | { kind: "dispatching" }
  | { kind: "active"; job: string }
  | { kind: "done"; result: NodeResult };

export interface Progress {
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  skipped: number;
  inFlight: number;
  queued: number;
  /** Active Jobs of this owner that belong to no node of this run (they hold slots until they finish). */
  foreign: number;
}

export class FanOut {
  readonly parallelism: number;
  private readonly states = new Map<string, NodeState>();
  private readonly queue: string[];
  /** Next queue position (an index, not shift(): shifting a 10,000-entry array per dispatch is quadratic). */
  private head = 0;
  private readonly foreignActive = new Set<string>();
  private occupied = 0;
  private stopped = false;
  // Counters and the active-Job index are kept incrementally: on large fleets every watch event asks for them.
  private readonly counts = {
    queued: 0,
    dispatching: 0,
    active: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    unknown: 0,
  };
  private readonly active = new Map<string, string>();

  /** `nodes` in dispatch order; parallelism is clamped to [1, number of nodes] like upstream. */
  constructor(nodes: readonly string[], parallelism: number) {
    this.queue = [...new Set(nodes)];
    for (const node of this.queue) this.states.set(node, { kind: "queued" });
    this.counts.queued = this.queue.length;
    this.parallelism = Math.max(
      PARALLELISM_MIN,
      Math.min(Math.floor(parallelism), Math.max(PARALLELISM_MIN, this.queue.length)),
    );
  }

  private setState(node: string, next: NodeState): void {
    const previous = this.states.get(node);
    if (previous) {
      this.counts[previous.kind === "done" ? previous.result.outcome : previous.kind]--;
      if (previous.kind === "active") this.active.delete(previous.job);
    }
    this.counts[next.kind === "done" ? next.result.outcome : next.kind]++;
    if (next.kind === "active") this.active.set(next.job, node);
    this.states.set(node, next);
  }

  state(node: string): NodeState | undefined {
    return this.states.get(node);
  }

  has(node: string): boolean {
    return this.states.has(node);
  }

  /** Free slots: parallelism minus this run's in-flight nodes minus foreign active Jobs. */
  capacity(): number {
    return Math.max(0, this.parallelism - this.occupied - this.foreignActive.size);
  }

  /** Reserve slots for as many queued nodes as capacity allows; the caller dispatches them. */
  takeNext(): string[] {
    const taken: string[] = [];
    let free = this.stopped ? 0 : this.capacity();
    while (free > 0 && this.head < this.queue.length) {
      const node = this.queue[this.head++];
      if (this.states.get(node)?.kind !== "queued") continue;
      this.setState(node, { kind: "dispatching" });
      this.occupied++;
      free--;
      taken.push(node);
    }
    return taken;
  }

  /** The node's Job was created (or an existing one of this run adopted while dispatching). */
  created(node: string, job: string): void {
    const state = this.states.get(node);
    if (state?.kind === "dispatching" || state?.kind === "active")
      this.setState(node, { kind: "active", job });
    else throw new Error(`fan-out: node ${node} got a Job while ${state?.kind ?? "unknown"}`);
  }

  /**
   * An active Job of this run exists for a node that is not being dispatched (found at start, or created by an
   * earlier incarnation of this run): track it instead of creating another one. Returns false if the node is done.
   */
  adopt(node: string, job: string): boolean {
    const state = this.states.get(node);
    if (!state || state.kind === "done") return false;
    if (state.kind === "queued") this.occupied++;
    this.setState(node, { kind: "active", job });
    return true;
  }

  /** The node's result is known (Job finished, dispatch refused or failed): its slot is free at once. */
  finish(node: string, result: NodeResult): void {
    const state = this.states.get(node);
    if (!state || state.kind === "done") return;
    if (state.kind === "dispatching" || state.kind === "active") this.occupied--;
    this.setState(node, { kind: "done", result });
  }

  /** Whether an active Job of this owner outside this run's nodes holds a slot. */
  setForeignActive(job: string, active: boolean): void {
    if (active) this.foreignActive.add(job);
    else this.foreignActive.delete(job);
  }

  /** No more dispatching (SIGTERM, timeout); in-flight nodes still finish normally. */
  stop(): void {
    this.stopped = true;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Every node has a result, or dispatching stopped and nothing is in flight. */
  isFinished(): boolean {
    return this.occupied === 0 && (this.stopped || this.counts.queued === 0);
  }

  /** Nodes whose checks and create are under way. */
  dispatchingCount(): number {
    return this.counts.dispatching;
  }

  /** Nodes without a result, with their state (for timeout and interrupt summaries). */
  unfinished(): [string, NodeState][] {
    const out: [string, NodeState][] = [];
    for (const [node, state] of this.states) if (state.kind !== "done") out.push([node, state]);
    return out;
  }

  /** Job name -> node, for every node whose Job is in flight. */
  activeJobs(): ReadonlyMap<string, string> {
    return this.active;
  }

  progress(): Progress {
    const c = this.counts;
    return {
      total: this.states.size,
      done: c.succeeded + c.failed + c.skipped + c.unknown,
      succeeded: c.succeeded,
      failed: c.failed,
      skipped: c.skipped,
      inFlight: c.dispatching + c.active,
      queued: c.queued,
      foreign: this.foreignActive.size,
    };
  }

  /** Results of the finished nodes, in node order. */
  results(): NodeResult[] {
    const out: NodeResult[] = [];
    for (const state of this.states.values()) if (state.kind === "done") out.push(state.result);
    return out;
  }
}
