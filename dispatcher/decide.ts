// The dispatcher's decisions as pure functions, in the Kubernetes Job controller's style: on each sync (a tick of
// the loop, a watch event, a node re-read before dispatch, an answer to a create) the run reads what it knows into a
// plain state value, one named function says what to do as a list of actions, and run.ts carries them out through
// the API. No I/O and no clock here: times come in as values, so every decision is tested over tables of states.
import { jobOutcome, undecidedResult, type JobLike, type NodeResult } from "../kube/jobStatus";
import type { LabelSelector } from "../kube/labelSelector";
import type { NodeState } from "./fanout";
import { handlersVerdict, labelsAtValue, servedHandlers, type InstallLabelKeys } from "../kube/nodeLabels";

/** What the run does; run.ts executes each kind (kubeApi for the cluster, the fan-out for slots). */
export type Action =
  /** Track an existing Job of this run for a queued node instead of creating one (an earlier incarnation made it). */
  | { kind: "adopt"; node: string; job: string }
  /** The node's Job reached Complete/Failed: its result comes from the Job (and, for failures, its pods). */
  | { kind: "finishFromJob"; node: string; job: JobLike }
  /** The node's result is known without its Job's conditions (skipped, gone unseen, a refusal). */
  | { kind: "finishNode"; node: string; result: NodeResult }
  /** The node's record says its Job of this run already ended (and is gone): no second Job. */
  | { kind: "finishFromRecord"; node: string; result: NodeResult }
  /** FailureTarget: read the failed pods now, while they exist. */
  | { kind: "readFailureEarly"; node: string; job: JobLike }
  /** News of a node's Job while its create call is under way: applied when the call answers. */
  | { kind: "holdNews"; job: JobLike; gone: boolean }
  /** A Job no node of this run waits for holds a slot while it is active (or frees it). */
  | { kind: "holdSlot"; job: string; active: boolean }
  /** The node passed every check before dispatch: create its Job. */
  | { kind: "createJob"; node: string }
  /** Dispatching stops (SIGTERM, timeout, a fatal error); nodes in flight still finish. */
  | { kind: "stopDispatching" }
  /** Reserve free slots for queued nodes and dispatch them. */
  | { kind: "fillSlots" }
  /** Look for Jobs whose pods cannot start. */
  | { kind: "checkStuck" }
  /** Nothing to do until something happens (or the stuck check is due). */
  | { kind: "wait" }
  /** The loop is over: every node has a result, or dispatching stopped and nothing is being created. */
  | { kind: "endLoop" };

// ---------------------------------------------------------------------------------------------------------------
// A Job of this owner was added, changed or removed (the informer's cache already holds the change)

/** What a sync knows of one Job of this owner and of the node it is pinned to. */
export interface JobSyncState {
  job: JobLike;
  /** The node the Job is pinned to (its annotation or nodeName), if any. */
  node?: string;
  /** That node's place in the fan-out; undefined when the node is not one of this run's. */
  slot?: NodeState;
  /** The name this run gives the node's Job. */
  expectedName?: string;
  /** An earlier run (another owner Job) created it. */
  stale: boolean;
}

/** The slot a node's Job occupies right now, if the Job is the one the node waits for (active or being created). */
function ownSlot(s: JobSyncState): "active" | "queued" | "dispatching" | undefined {
  const name = s.job.metadata?.name;
  if (s.stale || !s.node || !s.slot) return undefined;
  if (s.slot.kind === "active" && s.slot.job === name) return "active";
  if (s.slot.kind === "queued") return "queued";
  if (s.slot.kind === "dispatching" && name === s.expectedName) return "dispatching";
  return undefined;
}

/** A Job was added or changed. */
export function decideJobSeen(s: JobSyncState): Action[] {
  const name = s.job.metadata?.name ?? "";
  const node = s.node ?? "";
  const outcome = jobOutcome(s.job);
  const earlyFailure = outcome.phase === "failed" && !outcome.terminal;
  switch (ownSlot(s)) {
    case "active":
      if (outcome.terminal) return [{ kind: "finishFromJob", node, job: s.job }];
      return earlyFailure ? [{ kind: "readFailureEarly", node, job: s.job }] : [];
    case "queued":
      // A Job of this same run (an earlier incarnation of this dispatcher created it): adopt, never recreate.
      return [
        { kind: "adopt", node, job: name },
        ...(outcome.terminal ? [{ kind: "finishFromJob", node, job: s.job } as const] : []),
      ];
    case "dispatching":
      return [
        { kind: "holdNews", job: s.job, gone: false },
        ...(earlyFailure ? [{ kind: "readFailureEarly", node, job: s.job } as const] : []),
      ];
    default:
      // Not a Job any node of ours is waiting for: it still holds a slot while active.
      return [{ kind: "holdSlot", job: name, active: !outcome.terminal }];
  }
}

/** A Job disappeared (DELETED, or missing from a relist); `deletedByUs`: this run deleted it (an earlier run's). */
export function decideJobGone(s: JobSyncState & { deletedByUs: boolean; now: string }): Action[] {
  const name = s.job.metadata?.name ?? "";
  const freed: Action = { kind: "holdSlot", job: name, active: false };
  if (s.deletedByUs) return [freed];
  const node = s.node ?? "";
  // Whoever made it, a Job the node waits for that is gone holds nothing for it any more (uids were checked).
  const slot = ownSlot({ ...s, stale: false });
  if (slot === "dispatching") return [freed, { kind: "holdNews", job: s.job, gone: true }];
  if (slot !== "active") return [freed];
  if (jobOutcome(s.job).phase !== "running") return [freed, { kind: "finishFromJob", node, job: s.job }];
  // Seen last while running: it was removed mid-run, or it finished and was removed while the watch had to relist
  // (410). Either way nobody saw how it ended, which is not a failure anyone observed.
  return [
    freed,
    {
      kind: "finishNode",
      node,
      result: undecidedResult(
        node,
        "unknown",
        "JobDeleted",
        `Job ${name} was deleted before it was seen to finish (by a user, its TTL or garbage collection); its outcome is unknown`,
        s.job,
        s.now,
      ),
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// One node, re-read just before its Job is created

/** The node as re-read before dispatch, and what the run selected it by. */
export interface NodeCheckState {
  node: string;
  /** Still reserved for dispatch (a stop or a watch event may have ended it meanwhile). */
  dispatching: boolean;
  /** The node as listed now; undefined when it is gone (or no longer matches the field selector). */
  fresh?: { metadata?: { uid?: string; labels?: Record<string, string> } };
  /** Its UID when it was selected. */
  selectedUid?: string;
  /** The node's record says its Job of this run already ended (resultFromNodeRecord). */
  recorded?: NodeResult;
  /** With --skip-installed-nodes: the node's record says this payload succeeded there already (unchangedResult). */
  unchanged?: NodeResult;
  /** Nodes were named explicitly (--nodes): selectors do not apply. */
  byName: boolean;
  fieldSelector?: string;
  selectors: readonly LabelSelector[];
  /** Describes the selectors for a NotSelected message. */
  selectorText: string;
  /** Why the template does not tolerate one of its taints (unless taints are ignored), if it does not. */
  tainted?: string;
  /** What the node does not report that --require-node-runtime-version / --require-node-machine-id need. */
  missingFacts?: string;
  /** The cleanup pass of a node no longer selected: the node matches the install's selection again. */
  backInSelection?: boolean;
}

function skipped(node: string, reason: string, message: string): Action {
  return { kind: "finishNode", node, result: undecidedResult(node, "skipped", reason, message) };
}

/** Create the node's Job, or say why not (gone, replaced, already done per its record, deselected, tainted). */
export function decideDispatch(s: NodeCheckState): Action[] {
  const { node, fresh } = s;
  if (!s.dispatching) return [];
  if (!fresh) {
    const field = s.fieldSelector && !s.byName ? " or no longer matches --node-field-selector" : "";
    return [skipped(node, "NodeGone", `node ${node} no longer exists${field}`)];
  }
  if (s.selectedUid && fresh.metadata?.uid !== s.selectedUid) {
    return [
      skipped(
        node,
        "NodeReplaced",
        `node ${node} was replaced (uid ${s.selectedUid} → ${fresh.metadata?.uid}); it is left for the next run`,
      ),
    ];
  }
  // An earlier incarnation of this run (same owner Job) already ran the node's Job, and its TTL removed it: the
  // record on the node says so, and the node must not get a second Job.
  if (s.recorded) return [{ kind: "finishFromRecord", node, result: s.recorded }];
  if (s.backInSelection) {
    return [
      {
        kind: "finishNode",
        node,
        result: {
          node,
          outcome: "succeeded",
          attempts: 0,
          reason: "BackInSelection",
          message: `node ${node} is selected again; not cleaned`,
        },
      },
    ];
  }
  if (s.unchanged) return [{ kind: "finishFromRecord", node, result: s.unchanged }];
  if (!s.byName && s.selectors.length > 0 && !s.selectors.some((x) => x.matches(fresh.metadata?.labels))) {
    return [
      skipped(node, "NotSelected", `node ${node} no longer matches ${s.selectorText}; it is left untouched`),
    ];
  }
  if (s.tainted) return [skipped(node, "Tainted", s.tainted)];
  if (s.missingFacts) {
    return [
      {
        kind: "finishNode",
        node,
        result: undecidedResult(node, "failed", "NodeFactsMissing", `${s.missingFacts}; no Job was created`),
      },
    ];
  }
  return [{ kind: "createJob", node }];
}

// ---------------------------------------------------------------------------------------------------------------
// The answer to a create

/** What to do after a create call failed. */
export type CreateVerdict =
  | { kind: "fatal"; message: string; exitCode: 1 | 2 }
  | { kind: "failNode"; reason: "CreateFailed"; message: string }
  /** 409: a Job of that name exists; look at it (resolveConflict) and maybe try again. */
  | { kind: "conflict" };

export interface CreateFailureState {
  node: string;
  code?: number;
  /** The server's message, and the whole failure described for a person. */
  message: string;
  described: string;
  /** The refusal as a missing-permission hint (403), if it was one. */
  forbidden?: string;
  /** Some Job of this run was created already (a later refusal is not a setup error). */
  createdAny: boolean;
  jobTemplate: string;
}

export function decideCreateFailure(s: CreateFailureState): CreateVerdict {
  if (s.forbidden) return { kind: "fatal", message: s.forbidden, exitCode: s.createdAny ? 1 : 2 };
  if (s.code === 422 && !s.createdAny) {
    // The server refuses the Job the template produces: every node would fail the same way.
    return {
      kind: "fatal",
      message: `the API server rejected the Job built from ${s.jobTemplate} for node ${s.node}: ${s.message}; fix the template`,
      exitCode: 2,
    };
  }
  if (s.code !== 409) return { kind: "failNode", reason: "CreateFailed", message: s.described };
  return { kind: "conflict" };
}

/** The Job that holds the node's Job name (409), as read back. */
export interface ConflictState {
  /** Its owner label value, if any. */
  ownerLabel?: string;
  owner: string;
  /** It was made by an earlier run (another owner Job). */
  stale: boolean;
  beingDeleted: boolean;
}

/**
 * `adopt` this run's Job; `wait` while this run's Job goes away, then create again; an earlier run's Job is replaced:
 * `deleteStale` deletes it, `awaitStale` waits for a deletion under way (either way its disappearance is expected);
 * `nameTaken` by a Job that is not this release's.
 */
export function decideConflict(
  s: ConflictState,
): "adopt" | "wait" | "deleteStale" | "awaitStale" | "nameTaken" {
  if (s.ownerLabel !== s.owner) return "nameTaken";
  if (!s.stale) return s.beingDeleted ? "wait" : "adopt";
  return s.beingDeleted ? "awaitStale" : "deleteStale";
}

/**
 * The Job that held the name (409) was gone when looked at (404). If the watch told, while the node was being
 * dispatched, that this run's Job of the node ended and was removed, that is the node's outcome: `applyNews` (a
 * second Job would install the node twice). Otherwise the name is free: `retry` the create.
 */
export function decideVanishedConflict(held?: { job: JobLike; gone: boolean }): "applyNews" | "retry" {
  return held?.gone && jobOutcome(held.job).phase !== "running" ? "applyNews" : "retry";
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

export interface LoopState {
  /** The run was killed: abandon everything at once. */
  killed: boolean;
  /** SIGTERM, timeout or a fatal error: no further Jobs. */
  stopping: boolean;
  /** The fan-out already stopped dispatching. */
  stopped: boolean;
  /** The fan-out has nothing left: every node has a result, or it stopped and nothing is in flight. */
  finished: boolean;
  /** Nodes whose checks and create are under way. */
  dispatching: number;
  /** ms since the last stuck check, and how often it runs. */
  sinceStuckCheckMs: number;
  stuckEveryMs: number;
}

/** One tick of the run's loop. */
export function decideLoop(s: LoopState): Action[] {
  if (s.killed) return [{ kind: "endLoop" }];
  const actions: Action[] = [];
  if (s.stopping && !s.stopped) actions.push({ kind: "stopDispatching" });
  if (!s.stopping) actions.push({ kind: "fillSlots" });
  // Stopping: wait only for dispatches under way (so their Job names are known), not for running Jobs.
  if (s.finished || (s.stopping && s.dispatching === 0)) return [...actions, { kind: "endLoop" }];
  if (s.sinceStuckCheckMs >= s.stuckEveryMs) actions.push({ kind: "checkStuck" });
  return [...actions, { kind: "wait" }];
}

// ---------------------------------------------------------------------------------------------------------------
// The end of the run

export interface EndState {
  /** The node's Job is still active, and the Job as last seen (if the cache still holds it). */
  job?: string;
  seen?: JobLike;
  /** The pod trouble reported for it, if any. */
  stuck?: string;
  timedOut: boolean;
  timeoutSecs?: number;
  interrupted: boolean;
  /** Why the run ended early, if it was an error. */
  error?: string;
}

/** The result of a node that had none when the run ended: why it was cut short. */
export function unfinishedResult(node: string, s: EndState): NodeResult {
  const running = s.job ? `its Job ${s.job} was still running` : "no Job was created for it";
  const [reason, message] = s.stuck
    ? ["Stuck", `${s.stuck} (${running} when the run ended)`]
    : s.timedOut
      ? ["Timeout", `the run timed out after ${s.timeoutSecs}s; ${running}`]
      : s.interrupted
        ? ["Interrupted", `the dispatcher was stopped; ${running}`]
        : [s.job ? "Aborted" : "NotDispatched", `${running}: ${s.error ?? "the run ended early"}`];
  return undecidedResult(node, "failed", reason, message, s.seen ?? s.job);
}

/** 0: every targeted node succeeded; 1: a node failed or is unknown, or the run timed out or was stopped; else the error's. */
export function exitCode(s: {
  error?: { exitCode: 1 | 2 };
  failed: number;
  unknown: number;
  timedOut: boolean;
  interrupted: boolean;
}): 0 | 1 | 2 {
  if (s.error) return s.error.exitCode;
  return s.failed > 0 || s.unknown > 0 || s.timedOut || s.interrupted ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Stuck pods

/** How one stuck check ends for a Job in flight: report it (again), keep its newest message, or clear it. */
export function decideStuck(s: {
  /** describeStuckPod of its pods now, if anything is wrong. */
  why?: string;
  /** When it was last reported, if it was. */
  reportedAt?: number;
  now: number;
  repeatMs: number;
}): "report" | "update" | "clear" {
  if (!s.why) return "clear";
  return s.reportedAt === undefined || s.now - s.reportedAt >= s.repeatMs ? "report" : "update";
}

// ---------------------------------------------------------------------------------------------------------------
// Ownership: the owner named by a pod, and another run still at work

/** `--owner-job-from-pod`: the Job that created the pod (its controlling owner of kind Job), or why there is none. */
export function ownerJobOfPod(pod: {
  metadata?: {
    name?: string;
    ownerReferences?: { kind?: string; name: string; uid: string; controller?: boolean }[];
  };
}): { name: string; uid: string } | { problem: string } {
  const jobs = (pod.metadata?.ownerReferences ?? []).filter((r) => r.kind === "Job");
  const owner = jobs.find((r) => r.controller) ?? (jobs.length === 1 ? jobs[0] : undefined);
  if (owner) return { name: owner.name, uid: owner.uid };
  return {
    problem: `pod ${pod.metadata?.name ?? "?"} was not created by a Job (no ownerReference of kind Job); pass the dispatcher's own pod name, e.g. from the downward API (metadata.name)`,
  };
}

/** Owner Jobs, other than this run's, of this prefix's per-node Jobs (by ownerReference): candidates for a live run. */
export function otherRunOwners(
  jobs: readonly { metadata?: { ownerReferences?: { kind?: string; name: string; uid: string }[] } }[],
  ownUid: string,
): { name: string; uid: string }[] {
  const owners = new Map<string, { name: string; uid: string }>();
  for (const job of jobs) {
    for (const r of job.metadata?.ownerReferences ?? []) {
      if (r.kind === "Job" && r.uid !== ownUid) owners.set(r.uid, { name: r.name, uid: r.uid });
    }
  }
  return [...owners.values()];
}

/**
 * `--yield-to-live-run`: another run is live while its owner Job, read now, is the same object (same UID), is not
 * being deleted and has not ended (no Complete/Failed condition).
 */
export function isLiveRun(owner: { uid: string }, now: JobLike | undefined): boolean {
  if (!now || now.metadata?.uid !== owner.uid || now.metadata?.deletionTimestamp) return false;
  return !jobOutcome(now).terminal;
}

// ---------------------------------------------------------------------------------------------------------------
// --skip-satisfied-nodes

/**
 * A node already covered by this install: both labels it writes are at the `--node-label` value (a pending node
 * never is) and, with `--require-node-handlers`, a required handler is served (a node not reporting handlers passes,
 * as in the check after a Job). Reported succeeded, attempts 0, reason `Satisfied`: coverage, not a version check.
 */
export function satisfiedResult(
  node: {
    metadata?: { name?: string; labels?: Record<string, string> };
    status?: { runtimeHandlers?: { name?: string }[] };
  },
  keys: InstallLabelKeys,
  value: string,
  requiredHandlers: readonly string[],
): NodeResult | undefined {
  if (!labelsAtValue(node.metadata?.labels, keys, value)) return undefined;
  const handlers =
    requiredHandlers.length > 0 ? handlersVerdict(servedHandlers(node), requiredHandlers) : "unanswerable";
  if (handlers === "notServing") return undefined;
  return {
    node: node.metadata?.name ?? "",
    outcome: "succeeded",
    attempts: 0,
    reason: "Satisfied",
    message: `labels ${keys.shared} and ${keys.mark} are already ${value}${handlers === "serving" ? " and a required handler is served" : ""}; no Job (--skip-satisfied-nodes)`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// --kubelet-timeout-warn-secs (advisory)

/** A Go duration (`2m0s`, `1h30m`, `15s`, `1.5m`) in seconds, or undefined when it is not one. */
export function goDurationSecs(text: string): number | undefined {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text.trim()) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
}

/**
 * What the kubelet's `/configz` says of its `runtimeRequestTimeout` against `--kubelet-timeout-warn-secs` (§3.5): a
 * warning when it is shorter (a long image pull or CRI restart may then time out), else an info line. Never fails.
 */
export function kubeletTimeoutNote(
  node: string,
  configz: unknown,
  thresholdSecs: number,
): { level: "info" | "warn"; message: string } {
  const root = (configz ?? {}) as Record<string, { runtimeRequestTimeout?: unknown } | undefined>;
  const raw = root.kubeletconfig?.runtimeRequestTimeout ?? root.kubeletConfig?.runtimeRequestTimeout;
  const secs = typeof raw === "string" ? goDurationSecs(raw) : undefined;
  if (secs === undefined) {
    return {
      level: "warn",
      message: `node ${node}: the kubelet's runtimeRequestTimeout could not be read (${JSON.stringify(raw ?? null)}); not checked`,
    };
  }
  return secs < thresholdSecs
    ? {
        level: "warn",
        message: `node ${node}: the kubelet's runtimeRequestTimeout is ${raw}, below ${thresholdSecs}s (--kubelet-timeout-warn-secs): long image pulls may time out`,
      }
    : { level: "info", message: `node ${node}: the kubelet's runtimeRequestTimeout is ${raw}` };
}
