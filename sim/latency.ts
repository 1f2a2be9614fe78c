// The reaction probe (off unless a caller turns it on): real-time stamps taken on the API server's side, so a
// dispatcher's reaction can be told apart from the simulator's own lag (simulated time stretches when the
// simulator is busy). It stamps (a) the first time a response or watch event shows a client a Job that has
// ended (Complete/Failed condition, or its deletion) and (b) the arrival of every successful Job create request.
// Off, each hook costs one property read.
import { JOB_OWNER_LABEL } from "../kube/jobStatus";
import type { KubeObject, LatencyProbeApi } from "./types";

function ended(job: KubeObject, deleted: boolean): boolean {
  if (deleted) return true;
  const conds = (job.status?.conditions as { type: string; status: string }[] | undefined) ?? [];
  return conds.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
}

export class LatencyProbe implements LatencyProbeApi {
  enabled = false;
  private owner: string | undefined;
  private readonly endSeen = new Set<string>();
  private readonly ends: number[] = [];
  private readonly creates: number[] = [];

  enable(owner?: string): void {
    this.enabled = true;
    this.owner = owner;
  }

  private tracked(job: KubeObject): boolean {
    const value = job.metadata.labels?.[JOB_OWNER_LABEL];
    return value !== undefined && (this.owner === undefined || value === this.owner);
  }

  /** A Job was just written to a client (watch event, GET or list response); `deleted` for a DELETED event. */
  shown(job: KubeObject, deleted: boolean, at: number): void {
    if (!this.tracked(job) || !ended(job, deleted)) return;
    const uid = job.metadata.uid ?? "";
    if (this.endSeen.has(uid)) return;
    this.endSeen.add(uid);
    this.ends.push(at);
  }

  /** A create request that arrived at `at` made this Job. */
  created(job: KubeObject, at: number): void {
    if (this.tracked(job)) this.creates.push(at);
  }

  jobEndsShown(): number[] {
    return [...this.ends].sort((a, b) => a - b);
  }

  jobCreatesArrived(): number[] {
    return [...this.creates].sort((a, b) => a - b);
  }
}
