// Pure decisions of the waiter: which nodes a run covers, what each node's result is, when the run is over, and
// how progress and failures read. No I/O here; rollout/waiter.ts feeds it what the watches saw. Built-ins only.
import { jobName } from "../dispatcher/naming";
import {
  type JobLike,
  type NodeRecord,
  type NodeResult,
  type PodLike,
  describePodFailure,
  describeStuckPod,
  jobAttemptFacts,
  jobNodeName,
  jobOutcome,
  nodeResultFromJob,
  readNodeRecord,
  resultFromNodeRecord,
  unchangedResult,
  undecidedResult,
} from "../kube/jobStatus";
import {
  DAEMONSET_AUTOMATIC_TOLERATIONS,
  type Taint,
  type Toleration,
  describeTaint,
} from "../kube/tolerations";
import { admitSelected } from "../kube/nodeSelection";
import type { NodeSelectionSpec, RolloutInputs, RolloutSummary } from "./types";

export interface NodeLike {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec?: { taints?: Taint[]; unschedulable?: boolean };
}

/** A selected node and, when the per-node template does not tolerate one of its taints, that taint. */
export interface SelectedNode {
  name: string;
  blockedBy?: string;
  /** The Node's creationTimestamp: a node that joined after the dispatcher started is not one of its targets. */
  createdAt?: string;
}

/**
 * The nodes a selection covers, sorted by name: explicit names win; else the union of what the API server returned
 * for each label selector (the server evaluates selectors, exactly as for the dispatcher); nothing = every node.
 * `listed` holds one list per selector (or one list of every node). Taints the per-node template does not tolerate
 * are noted per node.
 */
export function selectNodes(
  listed: readonly (readonly NodeLike[])[],
  selection: NodeSelectionSpec,
  tolerations?: readonly Toleration[],
): SelectedNode[] {
  // Nodes being deleted are not counted: they will not report a result.
  const { matched, skipped } = admitSelected(listed, selection, tolerations ?? [], {
    ignoreTaints: tolerations === undefined,
    skipDeleting: true,
  });
  const blocked = new Map(skipped.map((s) => [s.name, describeTaint(s.taint)]));
  return matched.map((n) => {
    const name = n.metadata?.name as string;
    const blockedBy = blocked.get(name);
    const createdAt = n.metadata?.creationTimestamp;
    return {
      name,
      ...(blockedBy ? { blockedBy } : {}),
      ...(createdAt ? { createdAt: String(createdAt) } : {}),
    };
  });
}

/** What the waiter saw of one per-node Job. */
export interface TrackedJob {
  job: JobLike;
  /** The Job vanished (TTL, a human, garbage collection) before we saw it finish. */
  deleted?: boolean;
  /** Pods of the Job, read once it failed or looked stuck (undefined when pods are not readable). */
  pods?: PodLike[];
  /** Since when (epoch ms) its pod has looked stuck, and why. */
  stuckSince?: number;
  stuckReason?: string;
}

export interface JobRunView {
  jobs: readonly TrackedJob[];
  dispatcher?: TrackedJob;
  /** Nodes the selection covered when the run ended (undefined = could not be listed). */
  selected?: readonly SelectedNode[];
  timedOut: boolean;
  timeoutSeconds: number;
  now: number;
  stuckGraceSeconds: number;
  /** Outcome records the dispatcher left on the nodes (read from the Node objects), by node name. */
  nodeRecords?: ReadonlyMap<string, NodeRecord>;
  /** Where the per-node Jobs live and whose they are: a node's record counts only for this run's Job. */
  namespace?: string;
  ownerValue?: string;
  /** The watch of per-node Jobs had to relist (410): Jobs created and removed meanwhile were never seen. */
  jobEventsLost?: boolean;
  /**
   * This run follows a dispatcher Job it did not create (adopted, e.g. after a Cancel): Jobs that dispatcher made and
   * that ended and were removed (TTL) before this run listed them were never seen.
   */
  adopted?: boolean;
  /** Since when (epoch ms) the dispatcher's own pod has looked stuck (unschedulable, image pull), and why. */
  dispatcherStall?: { since: number; reason: string };
  /**
   * creationTimestamp of this run's first dispatcher Job: node records older than it are earlier runs'. A replaced
   * dispatcher keeps the run's start (its replacement is created later than the records the first one left).
   */
  runStartedAt?: string;
  /** `selected` is the API server's answer (not a stand-in after a failed read): a node missing from it has left. */
  selectionListed?: boolean;
  /** Why nothing of this run can progress although its dispatcher runs (see runStalled); the run then ends. */
  runStall?: string;
  /**
   * The run's dispatcher leaves out nodes whose record says this payload succeeded there (`--skip-installed-nodes`):
   * such a node has no Job of this run and is reported succeeded (`Unchanged`).
   */
  skipPayload?: string;
}

/** The dispatcher's pod has been stuck for the grace period: nothing of this run can progress. */
export function dispatcherStalled(
  view: Pick<JobRunView, "dispatcherStall" | "now" | "stuckGraceSeconds">,
): boolean {
  return !!view.dispatcherStall && view.now - view.dispatcherStall.since >= view.stuckGraceSeconds * 1000;
}

function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Why the dispatcher's pod failed: its failed container's exit code and the *last* line of its termination message
 * (with FallbackToLogsOnError the message is the log's tail, whose last line is the dispatcher's final error).
 */
export function dispatcherPodFailure(pods: readonly PodLike[]): string | undefined {
  for (const pod of pods) {
    for (const st of [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]) {
      const t = st.state?.terminated ?? st.lastState?.terminated;
      if (!t || (t.exitCode ?? 0) === 0) continue;
      const last = (t.message ?? "")
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .pop();
      return `container ${st.name} exited ${t.exitCode}${last ? `: ${last.slice(0, 300)}` : t.reason ? `: ${t.reason}` : ""}`;
    }
  }
  return describePodFailure(pods);
}

/** The exit code of the dispatcher's failed container, if its pods say (a deleted pod may not). */
export function dispatcherExitCode(pods: readonly PodLike[] | undefined): number | undefined {
  for (const pod of pods ?? []) {
    for (const st of pod.status?.containerStatuses ?? []) {
      const t = st.state?.terminated ?? st.lastState?.terminated;
      if (t && (t.exitCode ?? 0) !== 0) return t.exitCode;
    }
  }
  return undefined;
}

/** What would unblock a pod that makes no progress, from how describeStuckPod / dsPodTrouble described it. */
export function stallHint(reason: string): string {
  if (/cannot be scheduled/.test(reason))
    return "no node can run it: make a node schedulable (uncordon or add one), or widen its nodeSelector/tolerations";
  if (/ImagePull|ErrImagePull|InvalidImageName|ErrImageNeverPull/.test(reason))
    return "its image cannot be pulled: check the image reference and the registry's pull access (imagePullSecrets)";
  if (/NodeNotReady|not ready/.test(reason))
    return "its node stopped reporting: bring the node back (kubelet, network) or remove it, then run `pulumi up` again";
  if (/crash-looping/.test(reason)) return "it fails and restarts: read its logs (kubectl logs --previous)";
  return "read the pod's events (kubectl describe pod)";
}

/** A Job whose pod has been stuck longer than the grace period counts as failed (reason `Stuck`). */
function stuckResult(
  t: TrackedJob,
  node: string,
  view: Pick<JobRunView, "now" | "stuckGraceSeconds">,
): NodeResult | undefined {
  if (t.stuckSince === undefined || !t.stuckReason) return undefined;
  if (view.now - t.stuckSince < view.stuckGraceSeconds * 1000) return undefined;
  return undecidedResult(
    node,
    "failed",
    "Stuck",
    `${t.stuckReason} (for ${Math.round((view.now - t.stuckSince) / 1000)}s); ${stallHint(t.stuckReason)}`,
    t.job,
  );
}

/**
 * Whether nothing of a run whose dispatcher still runs can progress: every per-node Job still open has had a stuck
 * pod (its node NotReady or gone, unschedulable, an image that cannot be pulled, a crash loop) for the grace period,
 * and the dispatcher cannot start another: those Jobs hold all `parallelism` slots, or no selected node it was given
 * is left without a Job (`view.selected`, read while the dispatcher runs; nodes that joined after its Job was created
 * are not its targets). The dispatcher itself would wait for them until the rollout's timeout. Returns why, for the
 * dispatcher's line of the message, or undefined.
 */
export function runStalled(view: JobRunView, parallelism: number | undefined): string | undefined {
  const open = openJobsAllStuck(view);
  if (open === 0) return undefined;
  const stuck = `${open} per-node Job(s) stuck for at least the grace period (${view.stuckGraceSeconds}s)`;
  if (parallelism !== undefined && open >= parallelism) {
    return `all ${parallelism} of the dispatcher's slots (--parallelism) are held by ${stuck}, so it cannot start another`;
  }
  // The dispatcher lists nodes when it starts: a node that joined after its Job was created is not its target (the
  // same second counts as before, to err on the side of waiting).
  const dispatcherCreated = String(view.dispatcher?.job.metadata?.creationTimestamp ?? "");
  const joinedLater = new Set(
    (view.selected ?? [])
      .filter((n) => n.createdAt && dispatcherCreated && n.createdAt > dispatcherCreated)
      .map((n) => n.name),
  );
  if (
    view.selected !== undefined &&
    !view.jobEventsLost &&
    nodesLeftUndispatched(view).every((n) => joinedLater.has(n))
  ) {
    return joinedLater.size
      ? `every node the dispatcher was given has its Job (${joinedLater.size} joined after it started), and the ${stuck} cannot finish`
      : `every selected node has its Job, and the ${stuck} cannot finish`;
  }
  return undefined;
}

/** How many per-node Jobs are open when every one of them is stuck past the grace period; else 0. */
export function openJobsAllStuck(view: Pick<JobRunView, "jobs" | "now" | "stuckGraceSeconds">): number {
  let open = 0;
  for (const [node, t] of jobsByNode(view.jobs)) {
    if (t.deleted || jobOutcome(t.job).terminal) continue;
    if (!stuckResult(t, node, view)) return 0;
    open++;
  }
  return open;
}

/** This run's record of the node (see resultFromNodeRecord), if the dispatcher left one. */
function recordedResult(node: string, job: string | undefined, view: JobRunView): NodeResult | undefined {
  const expected = job ?? (view.ownerValue ? jobName(view.ownerValue, node) : undefined);
  if (!expected || view.namespace === undefined) return undefined;
  return resultFromNodeRecord(node, view.nodeRecords?.get(node), {
    namespace: view.namespace,
    job: expected,
    notBefore: view.runStartedAt ?? view.dispatcher?.job.metadata?.creationTimestamp,
  });
}

/** The node already carries this run's payload and the run's dispatcher leaves it out (kube/jobStatus.ts). */
function unchangedFor(node: string, view: JobRunView): NodeResult | undefined {
  return unchangedResult(node, view.nodeRecords?.get(node), view.skipPayload);
}

/**
 * The selected nodes a replacement dispatcher must still cover: eligible, and with neither a Job of this run nor a
 * record of its outcome. A Job deleted before it was seen to end (garbage collection of a deleted dispatcher Job took
 * it mid-install) counts as never run. When Job events were lost (a 410 relist), no node is known to be left: a Job
 * may have run and been removed unseen, and running the node again could install it twice (it is reported
 * NotObserved instead). Every other node keeps its Job: the replacement adopts, never repeats.
 */
export function nodesLeftUndispatched(view: JobRunView): string[] {
  const byNode = jobsByNode(view.jobs);
  const left: string[] = [];
  for (const s of view.selected ?? []) {
    if (s.blockedBy) continue;
    const t = byNode.get(s.name);
    if (recordedResult(s.name, t?.job.metadata?.name, view)) continue;
    if (!t && unchangedFor(s.name, view)) continue;
    if (view.jobEventsLost || view.adopted) continue;
    if (!t || (t.deleted && !jobOutcome(t.job).terminal)) left.push(s.name);
  }
  return left;
}

/** Bounds on replacing a dispatcher that died with nodes left: how many times, and the wait before each. */
export const DISPATCHER_REPLACEMENT = { attempts: 3, firstBackoffMs: 1_000, maxBackoffMs: 30_000 } as const;

export function replacementBackoffMs(attempt: number): number {
  return Math.min(
    DISPATCHER_REPLACEMENT.maxBackoffMs,
    DISPATCHER_REPLACEMENT.firstBackoffMs * 2 ** Math.max(0, attempt - 1),
  );
}

/**
 * Whether a dispatcher that ended is replaced: it died (failed or deleted, not stalled: a stall would only repeat)
 * with selected nodes left, the attempts are not used up, the run has time, and it did not exit 2 (a usage or setup
 * error, such as a missing permission, that a new pod would meet again).
 */
export function shouldReplaceDispatcher(d: {
  phase: JobRunState["dispatcherPhase"];
  exitCode?: number;
  left: number;
  replaced: number;
  timedOut: boolean;
}): boolean {
  return (
    d.phase === "failed" &&
    d.exitCode !== 2 &&
    d.left > 0 &&
    d.replaced < DISPATCHER_REPLACEMENT.attempts &&
    !d.timedOut
  );
}

/**
 * The node's result if it is decided now (terminal Job, deleted Job, stuck pod), else undefined. A Job that vanished
 * before it was seen to finish (TTL 0, a user, garbage collection) is decided by the node's record; without one it
 * stays open while the dispatcher may still write it, then it is `unknown`, never `failed`.
 */
export function decidedJobResult(
  t: TrackedJob,
  view: JobRunView,
  dispatcherDone = true,
): NodeResult | undefined {
  const node = jobNodeName(t.job) ?? "";
  const result = nodeResultFromJob(t.job, t.pods);
  if (result && jobOutcome(t.job).terminal) {
    // Pods gone before anyone read them (a short TTL): the dispatcher's record may still say what failed.
    const recorded =
      result.outcome === "failed" && !t.pods?.length ? recordedResult(node, result.job, view) : undefined;
    const error = recorded?.outcome === "failed" ? view.nodeRecords?.get(node)?.error : undefined;
    return { ...result, node, ...(error ? { message: error } : {}) };
  }
  if (t.deleted) {
    if (result) return { ...result, node };
    const name = t.job.metadata?.name;
    const recorded = recordedResult(node, name, view);
    // The record says how it ended; the Job, which the watch saw, how many pods ran and when it started.
    if (recorded) return { ...recorded, ...jobAttemptFacts(t.job) };
    if (!dispatcherDone && !view.timedOut) return undefined;
    return undecidedResult(
      node,
      "unknown",
      "JobDeleted",
      `Job ${name} was removed (its TTL, a user or garbage collection) before the rollout saw it finish, and ` +
        "the node carries no record of this run's outcome (the dispatcher records it when it may patch nodes)",
      t.job,
    );
  }
  return stuckResult(t, node, view);
}

/**
 * A node that did not succeed and is no longer among the selected nodes was deleted (or relabelled) while its install
 * ran: its Job's own reason (its pods went with the node) does not say so, nor that nothing is left to fix there.
 */
function leftSelection(result: NodeResult, view: JobRunView): NodeResult {
  if (result.outcome === "succeeded" || !view.selectionListed || !view.selected) return result;
  if (view.selected.some((s) => s.name === result.node)) return result;
  const why =
    `node ${result.node} left the selection while its install ran (deleted, or its labels changed): nothing to ` +
    "fix if it was removed on purpose; a node that comes back is installed by the next `pulumi up`";
  return { ...result, message: result.message ? `${result.message}; ${why}` : why };
}

/** Latest Job per node (a node has one Job per run; a leftover duplicate loses to the newer one). */
function jobsByNode(jobs: readonly TrackedJob[]): Map<string, TrackedJob> {
  const byNode = new Map<string, TrackedJob>();
  for (const t of jobs) {
    const node = jobNodeName(t.job);
    if (!node) continue;
    const prev = byNode.get(node);
    const created = (x: TrackedJob) => String(x.job.metadata?.creationTimestamp);
    if (!prev || created(t) >= created(prev)) byNode.set(node, t);
  }
  return byNode;
}

export interface JobRunState {
  /** Every node's result (decided or not); meaningful once `done`. */
  results: NodeResult[];
  done: boolean;
  /** `stalled`: its pod cannot start (see dispatcherStalled); the run ends as if it had failed. */
  dispatcherPhase: "absent" | "running" | "succeeded" | "failed" | "stalled";
  /** Why the dispatcher itself failed, if it did. */
  dispatcherFailure?: string;
  counts: {
    done: number;
    succeeded: number;
    failed: number;
    skipped: number;
    unknown: number;
    running: number;
    total: number;
  };
}

/**
 * Level-triggered view of a job-mode run: the run is over when the dispatcher Job and every per-node Job of its owner
 * are terminal, or the timeout passed. Selected nodes without a Job are `skipped` (dispatcher succeeded: it chose not
 * to dispatch, e.g. a taint) or `failed` (dispatcher failed, or the timeout came first).
 */
export function jobRunState(view: JobRunView): JobRunState {
  const byNode = jobsByNode(view.jobs);
  const dOutcome = view.dispatcher ? jobOutcome(view.dispatcher.job) : undefined;
  const dispatcherPhase: JobRunState["dispatcherPhase"] = !view.dispatcher
    ? "absent"
    : view.dispatcher.deleted && !dOutcome?.terminal
      ? "failed"
      : dOutcome?.terminal
        ? dOutcome.phase === "succeeded"
          ? "succeeded"
          : "failed"
        : dispatcherStalled(view) || view.runStall
          ? "stalled"
          : "running";
  let dispatcherFailure: string | undefined;
  if (dispatcherPhase === "stalled" && dispatcherStalled(view) && view.dispatcherStall) {
    const { since, reason } = view.dispatcherStall;
    dispatcherFailure =
      `dispatcher Job ${view.dispatcher?.job.metadata?.name ?? ""} cannot run: ${reason} ` +
      `(for ${Math.round((view.now - since) / 1000)}s); ${stallHint(reason)}`;
  } else if (dispatcherPhase === "stalled" && view.runStall) {
    dispatcherFailure =
      `the rollout cannot progress: ${view.runStall}; the dispatcher Job ` +
      `${view.dispatcher?.job.metadata?.name ?? ""} was stopped (each stuck node's result says what would unblock it)`;
  }
  if (dispatcherPhase === "failed" && view.dispatcher) {
    const name = view.dispatcher.job.metadata?.name;
    const why = view.dispatcher.pods ? dispatcherPodFailure(view.dispatcher.pods) : undefined;
    dispatcherFailure = view.dispatcher.deleted
      ? `dispatcher Job ${name} was deleted before it finished`
      : `dispatcher Job ${name} failed: ${why ?? dOutcome?.message ?? dOutcome?.reason ?? "no reason given"}` +
        (dOutcome?.reason ? ` [${dOutcome.reason}]` : "");
  }
  const dispatcherDone =
    dispatcherPhase === "succeeded" || dispatcherPhase === "failed" || dispatcherPhase === "stalled";
  const results: NodeResult[] = [];
  let undecided = 0;
  const seen = new Set<string>();
  for (const [node, t] of byNode) {
    seen.add(node);
    const decided = decidedJobResult(t, view, dispatcherDone);
    if (decided) {
      results.push(leftSelection(decided, view));
      continue;
    }
    undecided++;
    const stuck = t.stuckReason ? `; ${t.stuckReason}` : "";
    results.push(
      undecidedResult(
        node,
        "failed",
        "Timeout",
        `Job ${t.job.metadata?.name} had not finished when the rollout timeout (${view.timeoutSeconds}s) passed${stuck}`,
        t.job,
      ),
    );
  }
  for (const s of view.selected ?? []) {
    if (seen.has(s.name)) continue;
    // A Job created and removed while the watch was away is known from the node's record.
    const recorded = recordedResult(s.name, undefined, view) ?? unchangedFor(s.name, view);
    if (recorded) {
      results.push(recorded);
      continue;
    }
    // A node the template cannot run on is skipped whatever else happened: the dispatcher never dispatches to it,
    // so neither a timeout nor a dispatcher failure makes it a failure.
    if (s.blockedBy) {
      results.push(
        undecidedResult(
          s.name,
          "skipped",
          "Tainted",
          `the node has taint ${s.blockedBy}, which the per-node Job template does not tolerate`,
        ),
      );
    } else if (!dispatcherDone) {
      undecided++;
      results.push(
        undecidedResult(
          s.name,
          "failed",
          "Timeout",
          `no Job was dispatched to this node before the rollout timeout (${view.timeoutSeconds}s) passed`,
        ),
      );
    } else if (view.jobEventsLost || view.adopted) {
      results.push(
        undecidedResult(
          s.name,
          "unknown",
          "NotObserved",
          view.jobEventsLost
            ? "no Job was seen for this node: the watch of Jobs expired (410) and had to relist, so a Job may have been " +
                "created and removed meanwhile; the node carries no record of this run's outcome"
            : "no Job was seen for this node: this run adopted a dispatcher that had run unwatched (after a Cancel), " +
                "so its Job may have ended and been removed (TTL) before; the node carries no record of this run's outcome",
        ),
      );
    } else if (dispatcherPhase === "succeeded") {
      results.push(
        undecidedResult(
          s.name,
          "skipped",
          "NotDispatched",
          "the dispatcher finished without creating a Job for this node (it joined the selection after the dispatcher listed nodes)",
        ),
      );
    } else {
      results.push(
        undecidedResult(
          s.name,
          "failed",
          "NotDispatched",
          `no Job was created for this node: ${dispatcherFailure}`,
        ),
      );
    }
  }
  results.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const counts = runCounts(results, undecided, view.timedOut);
  const done = view.timedOut || (dispatcherDone && undecided === 0);
  // A dispatcher exits non-zero whenever a node failed; that is no news beside the nodes' own reasons. It is reported
  // when it explains something: nodes it never reached, or a failure with no failed node.
  const explains =
    results.some((r) => r.reason === "NotDispatched") || !results.some((r) => r.outcome === "failed");
  return {
    results,
    done,
    dispatcherPhase,
    dispatcherFailure: explains ? dispatcherFailure : undefined,
    counts,
  };
}

/** Pod fields the daemonset-mode waiter reads. */
export interface DsPodLike extends PodLike {
  metadata?: PodLike["metadata"] & { labels?: Record<string, string> };
  spec?: { nodeName?: string };
}

export interface DsRunView {
  nodes: readonly NodeLike[];
  pods: readonly DsPodLike[];
  nodeSelector?: Record<string, string>;
  tolerations?: readonly Toleration[];
  /** The DaemonSet exists and its controller has seen the latest spec. */
  dsObserved: boolean;
  dsName: string;
  timedOut: boolean;
  timeoutSeconds: number;
  now: number;
  startedAt: number;
  /** Since when each node's pod has looked stuck (epoch ms), maintained by the waiter. */
  stuckSince: ReadonlyMap<string, number>;
  stuckGraceSeconds: number;
}

function podReady(pod: DsPodLike): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
}

/** A crash-looping container (kata-deploy's installer restarts on failure) is stuck too. */
export function dsPodTrouble(pod: DsPodLike): string | undefined {
  const stuck = describeStuckPod([pod]);
  if (stuck) return stuck;
  for (const s of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    if (s.state?.waiting?.reason === "CrashLoopBackOff") {
      const last = s.lastState?.terminated;
      const why = last
        ? ` (last exit ${last.exitCode}${last.message ? `: ${last.message.split("\n")[0]}` : ""})`
        : "";
      return `container ${s.name} of pod ${pod.metadata?.name} is crash-looping${why}`;
    }
  }
  if (pod.status?.phase === "Failed") return describePodFailure([pod]) ?? `pod ${pod.metadata?.name} failed`;
  return undefined;
}

/** The pod on each node: the newest one that is not being deleted. */
export function podsByNode(pods: readonly DsPodLike[]): Map<string, DsPodLike> {
  const out = new Map<string, DsPodLike>();
  for (const p of pods) {
    const node = p.spec?.nodeName;
    if (!node || p.metadata?.deletionTimestamp) continue;
    const prev = out.get(node);
    if (
      !prev ||
      String(p.metadata?.creationTimestamp ?? "") >= String(prev.metadata?.creationTimestamp ?? "")
    )
      out.set(node, p);
  }
  return out;
}

export interface DsRunState {
  results: NodeResult[];
  done: boolean;
  counts: JobRunState["counts"];
}

/**
 * Daemonset mode, in the same result shape: eligible nodes (the DaemonSet's nodeSelector, and taints tolerated by
 * its pods plus the tolerations the DaemonSet controller adds) succeed when their pod is Ready; a pod stuck past the
 * grace period fails its node; nodes the DaemonSet cannot run on are `skipped` (Tainted).
 */
export function dsRunState(view: DsRunView): DsRunState {
  const selector = view.nodeSelector && Object.keys(view.nodeSelector).length ? view.nodeSelector : undefined;
  const tolerations = [...DAEMONSET_AUTOMATIC_TOLERATIONS, ...(view.tolerations ?? [])];
  const pods = podsByNode(view.pods);
  const results: NodeResult[] = [];
  let undecided = 0;
  // The DaemonSet's nodeSelector (equalities, matched here), then the one admission rule (kube/nodeSelection.ts).
  const labelled = view.nodes.filter((n) => {
    const labels = n.metadata?.labels ?? {};
    return !selector || Object.entries(selector).every(([k, v]) => labels[k] === v);
  });
  const { admitted, skipped } = admitSelected([labelled], {}, tolerations);
  for (const { name, taint } of skipped) {
    results.push(
      undecidedResult(
        name,
        "skipped",
        "Tainted",
        `the node has taint ${describeTaint(taint)}, which DaemonSet ${view.dsName} does not tolerate`,
      ),
    );
  }
  for (const n of admitted) {
    const name = n.metadata?.name as string;
    const pod = pods.get(name);
    const restarts = (p: DsPodLike) =>
      [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].reduce(
        (sum, s) => sum + (s.restartCount ?? 0),
        0,
      );
    const startedAt = pod?.status?.startTime ? String(pod.status.startTime) : undefined;
    // A daemon pod's attempts: its first run and every restart of its containers.
    const attempts = pod ? 1 + restarts(pod) : 0;
    if (pod && podReady(pod) && view.dsObserved) {
      const ready = pod.status?.conditions?.find((c) => c.type === "Ready") as
        { lastTransitionTime?: string } | undefined;
      results.push({
        node: name,
        outcome: "succeeded",
        job: pod.metadata?.name,
        attempts,
        startedAt,
        finishedAt: ready?.lastTransitionTime ? String(ready.lastTransitionTime) : undefined,
      });
      continue;
    }
    // Between the restarts of a crash loop the pod runs for a while: restarts without Ready are trouble too.
    const trouble = pod
      ? (dsPodTrouble(pod) ??
        (restarts(pod) > 0
          ? `pod ${pod.metadata?.name} restarted ${restarts(pod)} time(s) without becoming Ready (crash-looping)`
          : undefined))
      : undefined;
    const since = view.stuckSince.get(name);
    if (trouble && since !== undefined && view.now - since >= view.stuckGraceSeconds * 1000) {
      results.push({
        node: name,
        outcome: "failed",
        job: pod?.metadata?.name,
        attempts,
        startedAt,
        finishedAt: isoSeconds(view.now),
        reason: "Stuck",
        message: `${trouble} (for ${Math.round((view.now - since) / 1000)}s); ${stallHint(trouble)}`,
      });
      continue;
    }
    undecided++;
    results.push({
      node: name,
      outcome: "failed",
      job: pod?.metadata?.name,
      attempts,
      startedAt,
      reason: "Timeout",
      message: pod
        ? `pod ${pod.metadata?.name} was not Ready when the rollout timeout (${view.timeoutSeconds}s) passed${trouble ? `: ${trouble}` : ""}`
        : `DaemonSet ${view.dsName} had no pod on this node when the rollout timeout (${view.timeoutSeconds}s) passed`,
    });
  }
  results.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return {
    results,
    done: view.timedOut || (undecided === 0 && view.dsObserved),
    counts: runCounts(results, undecided, view.timedOut),
  };
}

/** Counts for progress: decided results only; the Timeout placeholders of a run still going count as running. */
function runCounts(
  results: readonly NodeResult[],
  undecided: number,
  timedOut: boolean,
): JobRunState["counts"] {
  const counts = {
    done: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    unknown: 0,
    running: timedOut ? 0 : undecided,
    total: results.length,
  };
  for (const r of results) {
    if (r.reason === "Timeout" && !timedOut) continue;
    counts.done++;
    counts[r.outcome]++;
  }
  return counts;
}

export function summarize(results: readonly NodeResult[], durationSeconds: number): RolloutSummary {
  const s: RolloutSummary = { total: results.length, succeeded: 0, failed: 0, skipped: 0, durationSeconds };
  for (const r of results) {
    if (r.outcome === "unknown") s.unknown = (s.unknown ?? 0) + 1;
    else s[r.outcome]++;
  }
  return s;
}

/** Sorted names of the nodes where the install succeeded. */
export function kataNodes(results: readonly NodeResult[]): string[] {
  return results
    .filter((r) => r.outcome === "succeeded")
    .map((r) => r.node)
    .sort();
}

/**
 * How "where Kata is installed now" differs from the last run's successes: nodes that have it but are not among them
 * (`add`: installed earlier and since left the selection), and successes that no longer have it (`remove`: deleted
 * nodes, nodes cleaned since). Kept in the state instead of a second list of names, so it stays small.
 */
export interface KataCorrection {
  add?: string[];
  remove?: string[];
}

/** The Jobs of this release whose record on a node says what is there: its install's, and its cleanup's. */
export interface ReleaseJobs {
  namespace: string;
  installOwner: string;
  cleanupOwner?: string;
}

/** This release's dispatcher Jobs, whose records on the nodes count (job mode only). */
export function releaseJobs(inputs: RolloutInputs): ReleaseJobs | undefined {
  return inputs.mode === "job" && inputs.install
    ? {
        namespace: inputs.namespace,
        installOwner: inputs.install.ownerValue,
        cleanupOwner: inputs.cleanup?.ownerValue,
      }
    : undefined;
}

/**
 * Where Kata is installed now (issue #13 item 8), as a correction of `results`, from the nodes as listed now: a node
 * whose record this release wrote says it (its install Job succeeded: yes; its cleanup's Job: no; its install failed:
 * no); a node without such a record keeps what the results say; a node that does not exist has nothing.
 */
export function kataCorrection(
  results: readonly NodeResult[],
  nodes: readonly {
    metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  }[],
  release: ReleaseJobs | undefined,
): KataCorrection {
  const succeeded = new Set(kataNodes(results));
  const now = new Set<string>();
  for (const n of nodes) {
    const name = n.metadata?.name;
    if (!name) continue;
    const record = release ? readNodeRecord(n) : undefined;
    const by = record?.job;
    if (release && by === `${release.namespace}/${jobName(release.installOwner, name)}`) {
      if (record?.outcome === "succeeded") now.add(name);
    } else if (
      release?.cleanupOwner &&
      by === `${release.namespace}/${jobName(release.cleanupOwner, name)}`
    ) {
      continue;
    } else if (succeeded.has(name)) now.add(name);
  }
  const add = [...now].filter((n) => !succeeded.has(n)).sort();
  const remove = [...succeeded].filter((n) => !now.has(n)).sort();
  return { ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) };
}

/** Why a selected node gets an install in the next run (InstallPlan's reasons). */
export type InstallReason = "new" | "changed" | "failed";

/**
 * Why the next run installs `node`, judged from its record the way the bundled dispatcher's `--skip-installed-nodes`
 * does (unchangedResult): undefined when it carries `payload` already. A record this release's cleanup wrote means
 * Kata was removed: `new`, as a node without any record.
 */
export function installReason(
  node: {
    metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  },
  payload: string,
  release: ReleaseJobs,
): InstallReason | undefined {
  const name = node.metadata?.name ?? "";
  const record = readNodeRecord(node);
  if (unchangedResult(name, record, payload)) return undefined;
  if (!record) return "new";
  if (record.outcome === "failed") return "failed";
  const cleaned =
    release.cleanupOwner !== undefined &&
    record.job === `${release.namespace}/${jobName(release.cleanupOwner, name)}`;
  return cleaned ? "new" : "changed";
}

/** The last run's successes, corrected (kataCorrection): sorted names of the nodes where Kata is installed now. */
export function kataNodesNow(results: readonly NodeResult[], correction?: KataCorrection): string[] {
  const gone = new Set(correction?.remove ?? []);
  return [...kataNodes(results).filter((n) => !gone.has(n)), ...(correction?.add ?? [])].sort();
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(s % 60).padStart(2, "0")}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** `install: 312/5000 nodes done, 3 failed, 40 running, 1m05s` */
export function progressLine(
  label: string,
  counts: Omit<JobRunState["counts"], "unknown"> & { unknown?: number },
  elapsedSeconds: number,
  extra?: string,
): string {
  return (
    `${label}: ${counts.done}/${counts.total} nodes done, ${counts.failed} failed` +
    (counts.skipped ? `, ${counts.skipped} skipped` : "") +
    (counts.unknown ? `, ${counts.unknown} unknown` : "") +
    `, ${counts.running} running, ${formatDuration(elapsedSeconds)}` +
    (extra ? ` (${extra})` : "")
  );
}

/** One sentence for the end of a run; on failure it names failed nodes and their reasons (the first `limit`). */
export function finalMessage(
  label: string,
  summary: RolloutSummary,
  results: readonly NodeResult[],
  opts: { timedOut?: boolean; dispatcherFailure?: string; limit?: number } = {},
): string {
  const unknown = results.filter((r) => r.outcome === "unknown");
  const counts =
    `${summary.succeeded}/${summary.total} nodes succeeded, ${summary.failed} failed, ${summary.skipped} skipped` +
    `${unknown.length ? `, ${unknown.length} unknown` : ""} in ${formatDuration(summary.durationSeconds)}`;
  const failed = results.filter((r) => r.outcome === "failed");
  if (!failed.length && !unknown.length && !opts.dispatcherFailure && !opts.timedOut)
    return `${label}: ${counts}`;
  const limit = opts.limit ?? 10;
  const listed = failed
    .slice(0, limit)
    .map((r) => `${r.node} (${r.reason ?? "Failed"}${r.message ? `: ${r.message}` : ""})`)
    .join("; ");
  const more = failed.length > limit ? `; and ${failed.length - limit} more (see nodeResults)` : "";
  const verdict = failed.length || opts.dispatcherFailure || opts.timedOut ? "failed" : "incomplete";
  const parts = [
    `${label} ${verdict}: ${counts}${opts.timedOut ? " (the rollout timeout passed)" : ""}`,
    opts.dispatcherFailure,
    failed.length ? `failed nodes: ${listed}${more}` : undefined,
    unknown.length
      ? `outcome unknown (the next run installs them again): ${unknown
          .slice(0, limit)
          .map((r) => `${r.node} (${r.reason ?? "Unknown"}${r.message ? `: ${r.message}` : ""})`)
          .join("; ")}${unknown.length > limit ? `; and ${unknown.length - limit} more` : ""}`
      : undefined,
  ];
  return parts.filter(Boolean).join(". ");
}
