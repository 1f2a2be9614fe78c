// What a per-node Job says about its node, read from the Job's labels and status (and, when readable, its pods).
// Both dispatchers produce these Jobs, so the dispatcher's results and the waiter's outputs are derived here,
// from the same facts (kubernetes-api-facts.md §1). Node built-ins only: the rollout's serialized dynamic provider
// imports this file, so it must not import any npm package.

/**
 * `--tracking-label-prefix` default of kata-deploy's dispatchers: the in-tree one had it as a constant, and the charts
 * that run k8s-job-dispatcher pass this value (its own default, `k8s-job-dispatcher`, would orphan installed nodes).
 */
export const TRACKING_LABEL_PREFIX = "kata-deploy-job-dispatcher";

/** Label and annotation keys of the per-node Jobs under a tracking prefix (dispatcher-reference.md §2.6). */
export function jobTrackingKeys(prefix: string = TRACKING_LABEL_PREFIX): {
  owner: string;
  node: string;
  nodeName: string;
} {
  return { owner: `${prefix}/owner`, node: `${prefix}/node`, nodeName: `${prefix}/node-name` };
}

/** The keys under the default prefix (jobTrackingKeys()), as plain strings: the rollout's serialized provider reads them. */
export const JOB_OWNER_LABEL = `${TRACKING_LABEL_PREFIX}/owner`;
export const JOB_NODE_LABEL = `${TRACKING_LABEL_PREFIX}/node`;
export const JOB_NODE_NAME_ANNOTATION = `${TRACKING_LABEL_PREFIX}/node-name`;

/**
 * `unknown`: the node's Job is gone (TTL, a user, garbage collection) and no durable record says how it ended. It is
 * never reported as `failed`: nothing failed that anyone saw; the next run installs the node again.
 */
export type NodeOutcome = "succeeded" | "failed" | "skipped" | "unknown";

/** The per-node result shared by the dispatcher's results file, the rollout's outputs and the bench. */
export interface NodeResult {
  node: string;
  outcome: NodeOutcome;
  job?: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  reason?: string;
  message?: string;
}

/** The few Job fields read here, as they arrive in JSON (dates as RFC 3339 strings or Date objects). */
export interface JobCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string | Date;
}

export interface JobLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
  };
  spec?: { template?: { spec?: { nodeName?: string } } };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string | Date;
    completionTime?: string | Date;
    conditions?: JobCondition[];
  };
}

export interface ContainerStateLike {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string | Date };
  terminated?: { exitCode?: number; reason?: string; message?: string; signal?: number };
}

export interface ContainerStatusLike {
  name: string;
  state?: ContainerStateLike;
  lastState?: ContainerStateLike;
  restartCount?: number;
}

export interface PodLike {
  metadata?: { name?: string; creationTimestamp?: string | Date; deletionTimestamp?: string | Date };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    startTime?: string | Date;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    initContainerStatuses?: ContainerStatusLike[];
    containerStatuses?: ContainerStatusLike[];
  };
}

export type JobPhase = "running" | "succeeded" | "failed";

export interface JobOutcome {
  phase: JobPhase;
  /** True once Complete/Failed is set: the Job's pods are gone and nothing about it will change. */
  terminal: boolean;
  /** The deciding condition's reason and message (BackoffLimitExceeded, DeadlineExceeded, ...). */
  reason?: string;
  message?: string;
  /** When the deciding condition became true. */
  at?: string;
}

function iso(value: string | Date | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  return value instanceof Date ? value.toISOString() : String(value);
}

function trueCondition(job: JobLike, type: string): JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

/** The conditions `jobOutcome` decides by; no other condition changes a Job's outcome. */
export const OUTCOME_CONDITION_TYPES: readonly string[] = [
  "Failed",
  "Complete",
  "FailureTarget",
  "SuccessCriteriaMet",
];

/**
 * The Job's outcome from its conditions only: Complete/Failed are final; SuccessCriteriaMet/FailureTarget
 * (Kubernetes 1.31+) announce the same result while pods are still being cleaned up. Counters never decide:
 * `failed > 0` without a condition is a retry in progress, `succeeded >= 1` may lead the conditions.
 */
export function jobOutcome(job: JobLike): JobOutcome {
  const decided = (phase: JobPhase, terminal: boolean, c: JobCondition): JobOutcome => ({
    phase,
    terminal,
    reason: c.reason || undefined,
    message: c.message || undefined,
    at: iso(c.lastTransitionTime),
  });
  const failed = trueCondition(job, "Failed");
  if (failed) return decided("failed", true, failed);
  const complete = trueCondition(job, "Complete");
  if (complete) return decided("succeeded", true, complete);
  const failureTarget = trueCondition(job, "FailureTarget");
  if (failureTarget) return decided("failed", false, failureTarget);
  const successMet = trueCondition(job, "SuccessCriteriaMet");
  if (successMet) return decided("succeeded", false, successMet);
  return { phase: "running", terminal: false };
}

/** The raw node name a per-node Job is pinned to: the annotation (under `prefix`), else the pod template's nodeName. */
export function jobNodeName(job: JobLike, prefix: string = TRACKING_LABEL_PREFIX): string | undefined {
  return (
    job.metadata?.annotations?.[jobTrackingKeys(prefix).nodeName] ??
    job.spec?.template?.spec?.nodeName ??
    undefined
  );
}

function firstLine(text: string | undefined): string | undefined {
  const line = text
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  return line && line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

function podTime(pod: PodLike): number {
  const t = iso(pod.status?.startTime) ?? iso(pod.metadata?.creationTimestamp);
  return t ? Date.parse(t) : 0;
}

function failedContainer(
  pod: PodLike,
): { name: string; terminated: NonNullable<ContainerStateLike["terminated"]> } | undefined {
  // Init containers run first, so a failed init container is the cause; the state or the last restart's state.
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const status of statuses) {
    for (const state of [status.state, status.lastState]) {
      const terminated = state?.terminated;
      if (terminated && (terminated.exitCode ?? 0) !== 0) return { name: status.name, terminated };
    }
  }
  return undefined;
}

/**
 * Why the pods of a failed Job failed, e.g. `container host-check exited 1: no usable virtualization backend`:
 * the most recent pod with a failed container wins (its termination message, else the container's reason);
 * a pod rejected before any container ran (kubelet admission, eviction) is described by its own reason.
 */
export function describePodFailure(pods: readonly PodLike[]): string | undefined {
  const newestFirst = [...pods].sort((a, b) => podTime(b) - podTime(a));
  for (const pod of newestFirst) {
    const failed = failedContainer(pod);
    if (!failed) continue;
    const { exitCode, reason, message, signal } = failed.terminated;
    const detail = firstLine(message) ?? (reason && reason !== "Error" ? reason : undefined);
    const how = signal ? `was killed by signal ${signal}` : `exited ${exitCode}`;
    return `container ${failed.name} ${how}${detail ? `: ${detail}` : ""}`;
  }
  for (const pod of newestFirst) {
    if (pod.status?.phase === "Failed" && (pod.status.reason || pod.status.message)) {
      const detail = firstLine(pod.status.message);
      return `pod ${pod.metadata?.name ?? "?"} ${pod.status.reason ?? "failed"}${detail ? `: ${detail}` : ""}`;
    }
  }
  return undefined;
}

/**
 * Container waiting reasons that will not resolve by themselves. An array, not a Set: the rollout's dynamic
 * provider imports this file, and Pulumi's closure serializer turns a module-level Set into a plain object.
 */
const STUCK_WAITING_REASONS: readonly string[] = [
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
];

/**
 * Why a Job's pod is not making progress, or undefined when nothing looks stuck: a pod that cannot be scheduled
 * or admitted, or a container that cannot start (image pull, config errors). The caller applies a grace period.
 */
export function describeStuckPod(pods: readonly PodLike[]): string | undefined {
  for (const pod of [...pods].sort((a, b) => podTime(b) - podTime(a))) {
    const name = pod.metadata?.name ?? "?";
    // A pod whose node stopped reporting makes no progress (even one being deleted: it cannot finish terminating).
    const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
    if (ready?.status === "False" && ready.reason === "NodeNotReady" && pod.status?.phase !== "Succeeded") {
      return `pod ${name} is on a node that is not ready (NodeNotReady)`;
    }
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== "Pending") continue;
    const scheduled = pod.status.conditions?.find((c) => c.type === "PodScheduled");
    if (scheduled && scheduled.status === "False") {
      const detail = firstLine(scheduled.message);
      return `pod ${name} cannot be scheduled (${scheduled.reason ?? "Unschedulable"})${detail ? `: ${detail}` : ""}`;
    }
    const statuses = [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])];
    for (const status of statuses) {
      const waiting = status.state?.waiting;
      if (waiting?.reason && STUCK_WAITING_REASONS.includes(waiting.reason)) {
        const detail = firstLine(waiting.message);
        return `container ${status.name} of pod ${name} is waiting: ${waiting.reason}${detail ? `: ${detail}` : ""}`;
      }
    }
  }
  return undefined;
}

/** Attempts = pods that ran to an end (succeeded + failed); missing counters are zero. */
export function jobAttempts(job: JobLike): number {
  return (job.status?.succeeded ?? 0) + (job.status?.failed ?? 0);
}

/**
 * A node result that its Job's conditions did not decide (stuck, timed out, deleted unseen, interrupted, never
 * dispatched, skipped): `reason` and `message` say why. With the node's Job, its name, attempts and start time come
 * from it; with only a name, or none, nothing ran on the node (attempts 0). Keys left undefined are absent.
 */
export function undecidedResult(
  node: string,
  outcome: NodeOutcome,
  reason: string,
  message: string,
  job?: JobLike | string,
  finishedAt?: string,
): NodeResult {
  const facts = typeof job === "string" || job === undefined ? { job, attempts: 0 } : jobAttemptFacts(job);
  return {
    node,
    outcome,
    ...(facts.job !== undefined ? { job: facts.job } : {}),
    attempts: facts.attempts,
    ...(facts.startedAt !== undefined ? { startedAt: facts.startedAt } : {}),
    ...(finishedAt !== undefined ? { finishedAt } : {}),
    reason,
    message,
  };
}

/** What a node's Job says of the attempt, however it ended: its name, how many pods ran, when it started. */
export function jobAttemptFacts(job: JobLike): { job?: string; attempts: number; startedAt?: string } {
  const startedAt = iso(job.status?.startTime);
  return {
    job: job.metadata?.name,
    attempts: jobAttempts(job),
    ...(startedAt !== undefined ? { startedAt } : {}),
  };
}

/**
 * The node's result from its Job (and, if available, the Job's pods): undefined while the Job's outcome is not
 * decided. `failed` carries the condition reason (BackoffLimitExceeded, DeadlineExceeded, ...) and, when pods
 * are readable, the failing container's exit code and message: `container c exited 1: why [Reason]`.
 */
export function nodeResultFromJob(job: JobLike, pods?: readonly PodLike[]): NodeResult | undefined {
  const outcome = jobOutcome(job);
  if (outcome.phase === "running") return undefined;
  const node = jobNodeName(job) ?? job.metadata?.labels?.[JOB_NODE_LABEL] ?? "";
  const result: NodeResult = {
    node,
    outcome: outcome.phase,
    job: job.metadata?.name,
    attempts: jobAttempts(job),
    startedAt: iso(job.status?.startTime),
    finishedAt: outcome.phase === "succeeded" ? (iso(job.status?.completionTime) ?? outcome.at) : outcome.at,
  };
  if (outcome.phase === "failed") {
    result.reason = outcome.reason ?? "Failed";
    result.message = failureMessage(outcome, pods);
  }
  return result;
}

/** `<pod detail> [<Reason>]`, or the Job condition's own message when the pods cannot be read or explain nothing. */
export function failureMessage(outcome: JobOutcome, pods?: readonly PodLike[]): string {
  const tag = outcome.reason ? ` [${outcome.reason}]` : "";
  const fromPods = pods ? describePodFailure(pods) : undefined;
  if (fromPods) return `${fromPods}${tag}`;
  return `${outcome.message ?? "the Job failed"}${tag}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The durable record of a node's outcome, on the Node itself (k8s-job-dispatcher 0.3's reporting): it outlives the
// Job, which its TTL, a user or garbage collection may remove before anyone read how it ended.

/** Where Events about a Node go (k8s-job-dispatcher 0.3 does the same): a Node is cluster-scoped and has no namespace. */
export const NODE_EVENT_NAMESPACE = "default";

/**
 * Label `<prefix>/result` and annotations `<prefix>/error`, `<prefix>/finished-at` as 0.3 writes them. This project's
 * additions: `<prefix>/job` (the Job that produced the record, `<namespace>/<name>`), so a reader can tell runs apart,
 * and `<prefix>/payload` (kube/payload.ts's digest of what that Job installed), so a later run can leave the node alone.
 */
export function nodeRecordKeys(prefix: string = TRACKING_LABEL_PREFIX): {
  result: string;
  error: string;
  finishedAt: string;
  job: string;
  payload: string;
} {
  return {
    result: `${prefix}/result`,
    error: `${prefix}/error`,
    finishedAt: `${prefix}/finished-at`,
    job: `${prefix}/job`,
    payload: `${prefix}/payload`,
  };
}

export interface NodeRecord {
  outcome: "succeeded" | "failed";
  finishedAt?: string;
  error?: string;
  /** `<namespace>/<Job name>`; absent when another dispatcher (upstream 0.3) wrote the record. */
  job?: string;
  /** kube/payload.ts's digest of the Job's pod template; absent when another dispatcher wrote the record. */
  payload?: string;
}

/** Annotation values are free text, but a record must stay a small part of the Node object. */
const MAX_RECORD_ERROR = 1024;

/** A merge patch that records `result` on its node (success clears an earlier error), with the payload it ran. */
export function nodeRecordPatch(
  result: NodeResult,
  namespace: string,
  prefix: string = TRACKING_LABEL_PREFIX,
  payload?: string,
): { metadata: { labels: Record<string, string | null>; annotations: Record<string, string | null> } } {
  const keys = nodeRecordKeys(prefix);
  const failed = result.outcome === "failed";
  const error = failed ? (result.message ?? result.reason ?? "failed") : undefined;
  return {
    metadata: {
      labels: { [keys.result]: failed ? "failed" : "succeeded" },
      annotations: {
        [keys.error]: error === undefined ? null : error.slice(0, MAX_RECORD_ERROR),
        [keys.finishedAt]: result.finishedAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
        [keys.job]: result.job ? `${namespace}/${result.job}` : null,
        [keys.payload]: payload ?? null,
      },
    },
  };
}

/** The record a Node carries, if any. */
export function readNodeRecord(
  node: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } },
  prefix: string = TRACKING_LABEL_PREFIX,
): NodeRecord | undefined {
  const keys = nodeRecordKeys(prefix);
  const value = node.metadata?.labels?.[keys.result];
  if (value !== "succeeded" && value !== "failed") return undefined;
  const a = node.metadata?.annotations ?? {};
  return {
    outcome: value,
    finishedAt: a[keys.finishedAt],
    error: a[keys.error],
    job: a[keys.job],
    payload: a[keys.payload],
  };
}

/**
 * The node already carries what this run would install: its record says a Job of `payload` succeeded there (any run,
 * any time; a failure, another payload or no payload at all installs again). Reported as succeeded, attempts 0, reason
 * `Unchanged`, no Job of this run.
 */
export function unchangedResult(
  node: string,
  record: NodeRecord | undefined,
  payload: string | undefined,
): NodeResult | undefined {
  if (!payload || record?.outcome !== "succeeded" || record.payload !== payload) return undefined;
  const by = record.job ? `Job ${record.job}` : "an earlier Job";
  return {
    node,
    outcome: "succeeded",
    attempts: 0,
    reason: "Unchanged",
    finishedAt: record.finishedAt,
    message: `${by} installed the same payload (${payload})${record.finishedAt ? ` at ${record.finishedAt}` : ""}; not installed again`,
  };
}

/**
 * The node's result from its record, when the record is this run's: written for this Job (when it names one) and
 * not before the run began (`notBefore`, the dispatcher Job's creationTimestamp: both come from the API server's
 * clock at second precision). Anything older is an earlier run's and says nothing about this one.
 */
export function resultFromNodeRecord(
  node: string,
  record: NodeRecord | undefined,
  expected: { namespace: string; job: string; notBefore?: string | Date },
): NodeResult | undefined {
  const notBefore = iso(expected.notBefore);
  if (!record || !notBefore) return undefined;
  if (record.job !== undefined && record.job !== `${expected.namespace}/${expected.job}`) return undefined;
  const finished = Date.parse(record.finishedAt ?? "");
  const since = Date.parse(notBefore);
  if (!Number.isFinite(finished) || !Number.isFinite(since) || finished < since) return undefined;
  return {
    node,
    outcome: record.outcome,
    job: expected.job,
    attempts: 0,
    finishedAt: record.finishedAt,
    ...(record.outcome === "failed"
      ? {
          reason: "Failed",
          message: `${record.error ?? "the Job failed"} (from the node's record; the Job is gone)`,
        }
      : {}),
  };
}
