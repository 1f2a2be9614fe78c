// The Job controller (kubernetes-api-facts.md §1): creates pods from the template, counts finished pods
// through the batch.kubernetes.io/job-tracking finalizer, honours backoffLimit (failed > limit),
// activeDeadlineSeconds, suspend, pod-failure back-off, and writes status with the 1.31+ condition
// sequence (SuccessCriteriaMet → Complete, FailureTarget → Failed). Also the TTL-after-finished
// controller (Foreground delete with a UID precondition). Level-triggered: events enqueue Job keys.
import type { SimClock } from "../clock";
import { ApiError } from "../errors";
import { cloneJson } from "../json";
import type { Store, StoreEvent } from "../store";
import type { KubeObject } from "../types";
import { Condition, conditionStatus, isPodTerminal, setCondition } from "./podStatus";

type Rec = Record<string, unknown>;

export const JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking";
const BACKOFF_BASE_MS = 10_000;
const BACKOFF_MAX_MS = 360_000;

const MESSAGES: Record<string, string> = {
  BackoffLimitExceeded: "Job has reached the specified backoff limit",
  DeadlineExceeded: "Job was active longer than specified deadline",
  CompletionsReached: "Reached expected number of succeeded pods",
};

function jobConditions(job: KubeObject): Condition[] {
  return (job.status?.conditions as Condition[] | undefined) ?? [];
}

function hasTrue(job: KubeObject, type: string): Condition | undefined {
  return jobConditions(job).find((c) => c.type === type && c.status === "True");
}

export function isJobFinished(job: KubeObject): boolean {
  return !!hasTrue(job, "Complete") || !!hasTrue(job, "Failed");
}

function controllerUid(pod: KubeObject): string | undefined {
  return pod.metadata.ownerReferences?.find((r) => r.controller && r.kind === "Job")?.uid;
}

export class JobController {
  private readonly queue = new Set<string>();
  private scheduled = false;
  /** job uid → pod keys ("ns/name") */
  private readonly podsByJob = new Map<string, Set<string>>();
  /** job uid → simulated time before which no replacement pod is created */
  private readonly backoffUntil = new Map<string, number>();
  private readonly timers = new Map<string, (() => void)[]>();
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
  ) {}

  close(): void {
    this.closed = true;
    for (const list of this.timers.values()) list.forEach((c) => c());
    this.timers.clear();
  }

  onEvent(e: StoreEvent): void {
    if (e.resource === "jobs") {
      const key = `${e.object.metadata.namespace}/${e.object.metadata.name}`;
      if (e.type === "DELETED") {
        const uid = e.object.metadata.uid ?? "";
        this.timers.get(uid)?.forEach((c) => c());
        this.timers.delete(uid);
        this.backoffUntil.delete(uid);
        // Pods left behind (orphaned) lose the tracking finalizer.
        for (const podKey of this.podsByJob.get(uid) ?? []) this.releaseOrphan(podKey);
        this.podsByJob.delete(uid);
        return;
      }
      this.enqueue(key);
      return;
    }
    if (e.resource !== "pods") return;
    const pod = e.object;
    const podKey = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const uid = controllerUid(pod) ?? (e.previous ? controllerUid(e.previous) : undefined);
    if (!uid) {
      if (pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) && e.type !== "DELETED")
        this.releaseOrphan(podKey);
      return;
    }
    let set = this.podsByJob.get(uid);
    if (e.type === "DELETED") set?.delete(podKey);
    else {
      if (!set) this.podsByJob.set(uid, (set = new Set()));
      set.add(podKey);
    }
    const job = this.store.byUidLookup(uid);
    if (job && job.kind === "Job") this.enqueue(`${job.metadata.namespace}/${job.metadata.name}`);
    else if (e.type !== "DELETED" && pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER))
      this.releaseOrphan(podKey);
  }

  private releaseOrphan(podKey: string): void {
    setImmediate(() => {
      if (this.closed) return;
      const [ns, name] = podKey.split("/");
      const pod = this.store.peek("pods", ns, name);
      if (!pod) return;
      const uid = controllerUid(pod);
      if (uid && this.store.byUidLookup(uid)) return;
      this.removeFinalizer(podKey);
    });
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const keys = [...this.queue];
      this.queue.clear();
      for (const k of keys) {
        if (this.closed) return;
        try {
          this.sync(k);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          this.requeueAfter(k, 1000);
        }
      }
    });
  }

  private requeueAfter(key: string, simMs: number, uid?: string): void {
    const cancel = this.clock.after(simMs, () => this.enqueue(key));
    if (uid) {
      let list = this.timers.get(uid);
      if (!list) this.timers.set(uid, (list = []));
      list.push(cancel);
    }
  }

  private removeFinalizer(podKey: string): void {
    const [ns, name] = podKey.split("/");
    this.store.mutate("pods", ns, name, (p) => {
      const rest = (p.metadata.finalizers ?? []).filter((f) => f !== JOB_TRACKING_FINALIZER);
      if (rest.length === (p.metadata.finalizers ?? []).length) return false;
      if (rest.length === 0) delete p.metadata.finalizers;
      else p.metadata.finalizers = rest;
    });
  }

  private pods(uid: string): { key: string; pod: KubeObject }[] {
    const out: { key: string; pod: KubeObject }[] = [];
    for (const key of this.podsByJob.get(uid) ?? []) {
      const [ns, name] = key.split("/");
      const pod = this.store.peek("pods", ns, name);
      if (pod) out.push({ key, pod });
    }
    return out;
  }

  sync(key: string): void {
    const [ns, name] = key.split("/");
    const job = this.store.peek("jobs", ns, name);
    if (!job) return;
    const uid = job.metadata.uid ?? "";
    const spec = (job.spec ?? {}) as Rec;
    const nowMs = this.clock.now();
    const now = this.clock.iso(nowMs);
    const pods = this.pods(uid);

    if (isJobFinished(job)) {
      // Late pods still carrying the finalizer are released; TTL is armed once.
      for (const { key: k, pod } of pods)
        if (isPodTerminal(pod) || pod.metadata.deletionTimestamp) this.removeFinalizer(k);
      this.armTtl(job);
      return;
    }

    const replaceTerminating =
      (spec.podReplacementPolicy ?? "TerminatingOrFailed") === "TerminatingOrFailed" &&
      !spec.podFailurePolicy;
    let newSucceeded = 0;
    let newFailed = 0;
    let active = 0;
    let ready = 0;
    let terminating = 0;
    const toUntrack: string[] = [];
    const activePods: { key: string; pod: KubeObject }[] = [];
    for (const entry of pods) {
      const { pod } = entry;
      const phase = pod.status?.phase;
      const deleting = !!pod.metadata.deletionTimestamp;
      const tracked = pod.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) ?? false;
      if (!isPodTerminal(pod)) {
        if (deleting) terminating++;
        else {
          active++;
          activePods.push(entry);
          if (conditionStatus(pod, "Ready") === "True") ready++;
        }
      }
      if (!tracked) continue;
      if (phase === "Succeeded") {
        newSucceeded++;
        toUntrack.push(entry.key);
      } else if (phase === "Failed" || (deleting && replaceTerminating)) {
        newFailed++;
        toUntrack.push(entry.key);
      }
    }
    const prev = (job.status ?? {}) as Rec;
    const succeeded = ((prev.succeeded as number) ?? 0) + newSucceeded;
    const failed = ((prev.failed as number) ?? 0) + newFailed;
    if (newFailed > 0) {
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failed - 1));
      this.backoffUntil.set(uid, nowMs + delay);
    }

    let conditions = jobConditions(job);
    let startTime = prev.startTime as string | undefined;
    const suspended = spec.suspend === true;
    if (suspended) {
      if (conditionStatus(job, "Suspended") !== "True") {
        conditions = setCondition(
          conditions,
          { type: "Suspended", status: "True", reason: "JobSuspended", message: "Job suspended" },
          now,
        );
      }
      for (const { pod } of activePods) this.deletePod(pod);
    } else {
      if (conditionStatus(job, "Suspended") === "True") {
        conditions = setCondition(
          conditions,
          { type: "Suspended", status: "False", reason: "JobResumed", message: "Job resumed" },
          now,
        );
        startTime = undefined;
      }
      if (!startTime) startTime = now;
    }

    const backoffLimit = (spec.backoffLimit as number) ?? 6;
    const completions = spec.completions as number | undefined;
    const parallelism = (spec.parallelism as number) ?? 1;
    const deadline = spec.activeDeadlineSeconds as number | undefined;
    let failureTarget = conditions.find((c) => c.type === "FailureTarget" && c.status === "True");
    let successTarget = conditions.find((c) => c.type === "SuccessCriteriaMet" && c.status === "True");
    // The interim condition is written in one sync, the terminal one in a later sync (as upstream does).
    const targetWasStored = !!failureTarget || !!successTarget;

    if (!suspended && !failureTarget && !successTarget) {
      let reason: string | undefined;
      const restartSum = activePods.reduce((sum, { pod }) => sum + restartsOf(pod), 0);
      const onFailure =
        (spec.template as Rec | undefined)?.spec &&
        ((spec.template as Rec).spec as Rec).restartPolicy === "OnFailure";
      if (failed > backoffLimit) reason = "BackoffLimitExceeded";
      else if (onFailure && (backoffLimit === 0 ? restartSum > 0 : restartSum >= backoffLimit))
        reason = "BackoffLimitExceeded";
      else if (deadline !== undefined && startTime && nowMs - Date.parse(startTime) >= deadline * 1000)
        reason = "DeadlineExceeded";
      if (reason) {
        conditions = setCondition(
          conditions,
          { type: "FailureTarget", status: "True", reason, message: MESSAGES[reason] },
          now,
        );
        failureTarget = conditions.find((c) => c.type === "FailureTarget");
      } else {
        const done =
          completions !== undefined
            ? succeeded >= completions && active === 0
            : succeeded > 0 && active === 0;
        if (done) {
          conditions = setCondition(
            conditions,
            {
              type: "SuccessCriteriaMet",
              status: "True",
              reason: "CompletionsReached",
              message: MESSAGES.CompletionsReached,
            },
            now,
          );
          successTarget = conditions.find((c) => c.type === "SuccessCriteriaMet");
        }
      }
    }

    if (failureTarget || successTarget) {
      for (const { pod } of activePods) this.deletePod(pod);
    } else if (!suspended && !job.metadata.deletionTimestamp) {
      // Create pods up to parallelism, respecting the failure back-off.
      const remaining = completions !== undefined ? completions - succeeded : succeeded > 0 ? 0 : parallelism;
      const waitingForTerminating = replaceTerminating ? 0 : terminating;
      const want = Math.min(parallelism, Math.max(0, remaining)) - active - waitingForTerminating;
      if (want > 0) {
        const until = this.backoffUntil.get(uid) ?? 0;
        if (until > nowMs) this.requeueAfter(key, until - nowMs, uid);
        else for (let i = 0; i < want; i++) if (this.createPod(job)) active++;
      }
    }
    for (const k of toUntrack) this.removeFinalizer(k);

    // The terminal condition waits until no pod is left running or terminating (1.31+).
    const settled = pods.every(
      ({ pod }) =>
        isPodTerminal(pod) || !this.store.peek("pods", pod.metadata.namespace, pod.metadata.name ?? ""),
    );
    let completionTime = prev.completionTime as string | undefined;
    const remainingActive = failureTarget || successTarget ? 0 : active;
    const stillTerminating = failureTarget || successTarget ? terminating + activePods.length : terminating;
    if (!targetWasStored && (failureTarget || successTarget)) this.enqueue(key);
    else if (failureTarget && settled && stillTerminating === 0) {
      conditions = setCondition(
        conditions,
        { type: "Failed", status: "True", reason: failureTarget.reason, message: failureTarget.message },
        now,
      );
    } else if (successTarget && settled && stillTerminating === 0) {
      conditions = setCondition(
        conditions,
        { type: "Complete", status: "True", reason: successTarget.reason, message: successTarget.message },
        now,
      );
      completionTime = now;
    }

    const status: Rec = {};
    if (conditions.length > 0) status.conditions = conditions;
    if (startTime) status.startTime = startTime;
    if (completionTime) status.completionTime = completionTime;
    if (remainingActive > 0) status.active = remainingActive;
    if (succeeded > 0) status.succeeded = succeeded;
    if (failed > 0) status.failed = failed;
    status.terminating = stillTerminating;
    status.ready = failureTarget || successTarget ? 0 : ready;
    status.uncountedTerminatedPods = {};
    this.store.mutate("jobs", ns, name, (draft) => {
      if (draft.metadata.uid !== uid) return false;
      draft.status = status;
    });

    if (deadline !== undefined && startTime && !failureTarget && !successTarget && !suspended) {
      const at = Date.parse(startTime) + deadline * 1000;
      this.requeueAfter(key, Math.max(0, at - nowMs), uid);
    }
    const updated = this.store.peek("jobs", ns, name);
    if (updated && isJobFinished(updated)) this.armTtl(updated);
  }

  private createPod(job: KubeObject): boolean {
    const template = ((job.spec as Rec).template ?? {}) as Rec;
    const tmeta = (template.metadata ?? {}) as Rec;
    const pod: KubeObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: `${job.metadata.name}-`,
        namespace: job.metadata.namespace,
        labels: { ...((tmeta.labels as Record<string, string>) ?? {}) },
        annotations: { ...((tmeta.annotations as Record<string, string>) ?? {}) },
        ownerReferences: [
          {
            apiVersion: "batch/v1",
            kind: "Job",
            name: job.metadata.name ?? "",
            uid: job.metadata.uid ?? "",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [JOB_TRACKING_FINALIZER],
      },
      spec: cloneJson((template.spec as Rec) ?? {}),
    };
    if (Object.keys(pod.metadata.annotations ?? {}).length === 0) delete pod.metadata.annotations;
    try {
      this.store.create("pods", pod, job.metadata.namespace);
      return true;
    } catch (e) {
      if (e instanceof ApiError) return false; // e.g. namespace terminating; retried on the next event
      throw e;
    }
  }

  private deletePod(pod: KubeObject): void {
    if (pod.metadata.deletionTimestamp) return;
    try {
      this.store.delete("pods", pod.metadata.namespace, pod.metadata.name ?? "", {
        propagationPolicy: "Background",
      });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }

  private readonly ttlArmed = new Set<string>();

  /** TTL-after-finished: Foreground delete with a UID precondition, `ttl` seconds after the terminal condition. */
  private armTtl(job: KubeObject): void {
    const ttl = job.spec?.ttlSecondsAfterFinished as number | undefined;
    const uid = job.metadata.uid ?? "";
    if (ttl === undefined || this.ttlArmed.has(uid) || job.metadata.deletionTimestamp) return;
    const finished = jobConditions(job).find(
      (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
    );
    if (!finished) return;
    this.ttlArmed.add(uid);
    const at = Date.parse(finished.lastTransitionTime) + ttl * 1000;
    const delay = Math.max(0, at - this.clock.now());
    const cancel = this.clock.after(delay, () => {
      this.ttlArmed.delete(uid);
      const cur = this.store.peek("jobs", job.metadata.namespace, job.metadata.name ?? "");
      if (!cur || cur.metadata.uid !== uid || cur.metadata.deletionTimestamp) return;
      try {
        this.store.delete("jobs", job.metadata.namespace, job.metadata.name ?? "", {
          propagationPolicy: "Foreground",
          preconditions: { uid },
        });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
      }
    });
    let list = this.timers.get(uid);
    if (!list) this.timers.set(uid, (list = []));
    list.push(cancel);
  }
}

function restartsOf(pod: KubeObject): number {
  const sum = (list: unknown): number =>
    ((list as Rec[] | undefined) ?? []).reduce((s, c) => s + ((c.restartCount as number) ?? 0), 0);
  return sum(pod.status?.initContainerStatuses) + sum(pod.status?.containerStatuses);
}
