// The audit log: every request and every object transition, plus incremental Job bookkeeping for the
// invariant queries (peak in-flight Jobs per owner, per-node Job history and concurrency, a timeline).
// Memory-lean: counters and per-Job records are complete; the request/transition logs are bounded.
import type { StoreEvent } from "./store";
import type {
  AuditApi,
  JobOutcome,
  KubeObject,
  NodeJobRecord,
  NodeJobsReport,
  RequestRecord,
  TimelinePoint,
  TransitionRecord,
} from "./types";

import { JOB_OWNER_LABEL as OWNER_LABEL } from "../kube/jobStatus";
export { OWNER_LABEL };

interface JobTrack {
  record: NodeJobRecord;
  node: string;
  active: boolean;
}

/** Two parallel arrays instead of an object per point. */
class Timeline {
  times: number[] = [];
  values: number[] = [];
  push(time: number, value: number): void {
    this.times.push(time);
    this.values.push(value);
  }
  points(): TimelinePoint[] {
    return this.times.map((time, i) => ({ time, active: this.values[i] }));
  }
}

function conditionTrue(job: KubeObject, type: string): { reason?: string } | undefined {
  const conds =
    (job.status?.conditions as { type: string; status: string; reason?: string }[] | undefined) ?? [];
  return conds.find((c) => c.type === type && c.status === "True");
}

export function jobStatusSummary(job: KubeObject): string {
  const complete = conditionTrue(job, "Complete");
  if (complete) return `Complete/${complete.reason ?? ""}`;
  const failed = conditionTrue(job, "Failed");
  if (failed) return `Failed/${failed.reason ?? ""}`;
  const s = job.status ?? {};
  return `active=${s.active ?? 0} succeeded=${s.succeeded ?? 0} failed=${s.failed ?? 0}`;
}

export class AuditLog implements AuditApi {
  private requestLog: RequestRecord[] = [];
  private transitionLog: TransitionRecord[] = [];
  private counts = new Map<string, number>();
  private jobs = new Map<string, JobTrack>();
  private activeByOwner = new Map<string, number>();
  private peakByOwner = new Map<string, number>();
  private activeByNode = new Map<string, number>();
  private peakByNode = new Map<string, number>();
  private jobsOfNode = new Map<string, NodeJobRecord[]>();
  private timelineAll = new Timeline();
  private timelineByOwner = new Map<string, Timeline>();
  private activeTotal = 0;

  constructor(
    private readonly limit: number,
    private readonly now: () => number,
  ) {}

  recordRequest(r: RequestRecord): void {
    const key = `${r.verb} ${r.resource}${r.subresource ? `/${r.subresource}` : ""}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (this.requestLog.length >= this.limit) this.requestLog.splice(0, Math.ceil(this.limit / 10));
    this.requestLog.push(r);
  }

  private recordTransition(t: TransitionRecord): void {
    if (this.transitionLog.length >= this.limit) this.transitionLog.splice(0, Math.ceil(this.limit / 10));
    this.transitionLog.push(t);
  }

  /** Store listener. */
  onEvent(e: StoreEvent): void {
    const o = e.object;
    const base = {
      time: this.now(),
      resource: e.resource,
      namespace: o.metadata.namespace,
      name: o.metadata.name ?? "",
      resourceVersion: o.metadata.resourceVersion ?? "",
    };
    const kind = e.type === "ADDED" ? "created" : e.type === "DELETED" ? "deleted" : "updated";
    let status: string | undefined;
    if (e.resource === "jobs") status = jobStatusSummary(o);
    else if (e.resource === "pods") status = String(o.status?.phase ?? "");
    this.recordTransition({ ...base, kind, status });
    if (e.resource === "jobs") this.trackJob(e, base);
  }

  private bump(map: Map<string, number>, peak: Map<string, number>, key: string, delta: number): number {
    const v = (map.get(key) ?? 0) + delta;
    map.set(key, v);
    if (v > (peak.get(key) ?? 0)) peak.set(key, v);
    return v;
  }

  private setActive(track: JobTrack, active: boolean, time: number): void {
    if (track.active === active) return;
    track.active = active;
    const delta = active ? 1 : -1;
    this.activeTotal += delta;
    this.timelineAll.push(time, this.activeTotal);
    const owner = track.record.owner;
    if (owner !== undefined) {
      const v = this.bump(this.activeByOwner, this.peakByOwner, owner, delta);
      let tl = this.timelineByOwner.get(owner);
      if (!tl) this.timelineByOwner.set(owner, (tl = new Timeline()));
      tl.push(time, v);
    }
    if (track.node) this.bump(this.activeByNode, this.peakByNode, track.node, delta);
  }

  private trackJob(e: StoreEvent, base: Omit<TransitionRecord, "kind">): void {
    const o = e.object;
    const uid = o.metadata.uid ?? "";
    const time = base.time;
    let track = this.jobs.get(uid);
    if (!track) {
      if (e.type !== "ADDED") return;
      const template = (o.spec?.template as { spec?: { nodeName?: string } } | undefined) ?? {};
      const node = template.spec?.nodeName ?? "";
      track = {
        node,
        active: false,
        record: {
          namespace: o.metadata.namespace ?? "",
          name: o.metadata.name ?? "",
          owner: o.metadata.labels?.[OWNER_LABEL],
          outcome: "active",
          createdAt: time,
        },
      };
      this.jobs.set(uid, track);
      if (node) {
        let list = this.jobsOfNode.get(node);
        if (!list) this.jobsOfNode.set(node, (list = []));
        list.push(track.record);
      }
      this.setActive(track, true, time);
      this.recordTransition({ ...base, kind: "jobActive" });
      return;
    }
    if (track.record.outcome !== "active") return;
    let outcome: JobOutcome | undefined;
    let reason: string | undefined;
    const complete = conditionTrue(o, "Complete");
    const failed = conditionTrue(o, "Failed");
    if (complete) {
      outcome = "succeeded";
      reason = complete.reason;
    } else if (failed) {
      outcome = "failed";
      reason = failed.reason;
    } else if (e.type === "DELETED") {
      outcome = "deleted";
    }
    if (!outcome) return;
    track.record.outcome = outcome;
    track.record.reason = reason;
    track.record.finishedAt = time;
    this.setActive(track, false, time);
    if (outcome !== "deleted") {
      this.recordTransition({
        ...base,
        kind: outcome === "succeeded" ? "jobComplete" : "jobFailed",
        status: `${outcome}/${reason ?? ""}`,
      });
    }
  }

  requests(
    filter: Partial<Pick<RequestRecord, "verb" | "resource" | "namespace" | "user" | "code">> = {},
  ): RequestRecord[] {
    const entries = Object.entries(filter) as [keyof RequestRecord, unknown][];
    return this.requestLog.filter((r) => entries.every(([k, v]) => r[k] === v));
  }

  requestCounts(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  transitions(resource?: string): TransitionRecord[] {
    return resource ? this.transitionLog.filter((t) => t.resource === resource) : [...this.transitionLog];
  }

  peakActiveJobsByOwner(): Record<string, number> {
    return Object.fromEntries(this.peakByOwner);
  }

  activeJobsTimeline(owner?: string): TimelinePoint[] {
    if (owner === undefined) return this.timelineAll.points();
    return this.timelineByOwner.get(owner)?.points() ?? [];
  }

  jobsByNode(): Record<string, NodeJobsReport> {
    const out: Record<string, NodeJobsReport> = {};
    for (const [node, jobs] of this.jobsOfNode) {
      out[node] = { jobs: jobs.map((j) => ({ ...j })), maxConcurrentActive: this.peakByNode.get(node) ?? 0 };
    }
    return out;
  }

  reset(): void {
    this.requestLog = [];
    this.transitionLog = [];
    this.counts.clear();
    this.peakByOwner = new Map(this.activeByOwner);
    this.peakByNode = new Map(this.activeByNode);
    for (const [uid, t] of this.jobs) if (!t.active) this.jobs.delete(uid);
    this.jobsOfNode.clear();
    for (const t of this.jobs.values()) {
      if (!t.node) continue;
      let list = this.jobsOfNode.get(t.node);
      if (!list) this.jobsOfNode.set(t.node, (list = []));
      list.push(t.record);
    }
    this.timelineAll = new Timeline();
    this.timelineByOwner.clear();
  }
}
