// What a per-node Job says about its node, read from the Job's labels and status (and, when readable, its pods).
// Both dispatchers produce these Jobs, so the dispatcher's results and the waiter's outputs are derived here,
// from the same facts (kubernetes-api-facts.md §1). Node built-ins only: the rollout's serialized dynamic provider
// imports this file, so it must not import any npm package.

/** Label and annotation keys of the per-node Jobs (shared with dispatcher/naming.ts, repeated to stay import-free). */
export const JOB_OWNER_LABEL = "kata-deploy-job-dispatcher/owner";
export const JOB_NODE_LABEL = "kata-deploy-job-dispatcher/node";
export const JOB_NODE_NAME_ANNOTATION = "kata-deploy-job-dispatcher/node-name";

export type NodeOutcome = "succeeded" | "failed" | "skipped";

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

/** The raw node name a per-node Job is pinned to: the annotation, else the pod template's nodeName. */
export function jobNodeName(job: JobLike): string | undefined {
  return (
    job.metadata?.annotations?.[JOB_NODE_NAME_ANNOTATION] ?? job.spec?.template?.spec?.nodeName ?? undefined
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
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== "Pending") continue;
    const name = pod.metadata?.name ?? "?";
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
