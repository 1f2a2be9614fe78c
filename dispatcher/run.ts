// The dispatcher run: resolve nodes, clear Jobs of earlier runs, then keep at most P per-node Jobs in flight,
// tracking all of them through ONE watch on the owner's Jobs. This file does the I/O: on each sync it reads what the
// run knows into a plain state, asks decide.ts what to do, and carries the actions out (`apply`) through kubeApi and
// the fan-out. `runDispatcher` is the programmatic entry point used by the CLI, the tests and the bench; it returns
// the results document instead of exiting.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  describeStuckPod,
  jobNodeName,
  jobTrackingKeys,
  jobOutcome,
  NODE_EVENT_NAMESPACE,
  nodeRecordPatch,
  nodeResultFromJob,
  readNodeRecord,
  resultFromNodeRecord,
  TRACKING_LABEL_PREFIX,
  undecidedResult,
  unchangedResult,
  type JobLike,
  type NodeResult,
} from "../kube/jobStatus";
import { parseLabelSelector, type LabelSelector } from "../kube/labelSelector";
import {
  installLabelKeys,
  missingNodeFacts,
  nodeFacts,
  type InstallLabelKeys,
  type NodeFacts,
} from "../kube/nodeLabels";
import { payloadDigest } from "../kube/payload";
import type { Toleration } from "../kube/tolerations";
import {
  blockingTaint,
  describeSelectors,
  noEligibleNodesError,
  skippedNode,
  type NodeLike,
  type SkippedNode,
} from "./admission";
import {
  decideConflict,
  decideCreateFailure,
  decideDispatch,
  decideJobGone,
  decideJobSeen,
  decideLoop,
  decideStuck,
  decideVanishedConflict,
  isLiveRun,
  otherRunOwners,
  ownerJobOfPod,
  satisfiedResult,
  exitCode as decideExitCode,
  unfinishedResult,
  type Action,
  type JobSyncState,
} from "./decide";
import { FanOut, type Progress } from "./fanout";
import { JobInformer } from "./jobInformer";
import {
  apiFailureOf,
  clientNodeApi,
  DEFAULT_RETRY,
  KubeRequestError,
  sleep,
  withRetry,
  type DispatcherKubeApi,
  type KubeJob,
  type NodeEvent,
  type OwnedObject,
  type RetryPolicy,
} from "./kubeApi";
import { describeProgress, RateLimited, silentLogger, streamLogger, type Logger } from "./log";
import { jobName, ownerValue as computeOwnerValue } from "./naming";
import { NodeResolver } from "./nodes";
import {
  checkOptions,
  describeError,
  DispatcherError,
  forbiddenHint,
  loadKubeConfig,
  resolveNamespace,
  type DispatcherDeps,
  type DispatcherOptions,
} from "./options";
import { PodReader } from "./pods";
import { countResults, type ResultsDocument } from "./results";
import {
  instantiateJob,
  parseJobTemplate,
  templateTolerations,
  TemplateError,
  type JobManifest,
  type OwnerReference,
} from "./template";
import { PARALLELISM_DEFAULT } from "../chart/parallelism";
import { DISPATCHER_DEFAULTS, NODE_WORK_TIMING } from "./defaults";
import { NodeWork, NodeWorkFailure } from "./nodeWork";

export { DispatcherError, resolveNamespace, type DispatcherDeps, type DispatcherOptions } from "./options";
export { summarize, type ResultsDocument } from "./results";

const STALE_DELETE_CONCURRENCY = 16;
const RECREATE_ATTEMPTS = 30;
const RECREATE_INTERVAL_MS = 2000;
const STUCK_REPEAT_MS = 5 * 60_000;
/** The kubelet probe of --kubelet-timeout-warn-secs is advisory: one try, this long at most. */
const KUBELET_PROBE_TIMEOUT_MS = 15_000;
/** A Node name may be 253 characters; generateName adds 5 and must stay within that. */
const MAX_EVENT_NAME_PREFIX = 200;

function isoNow(): string {
  return new Date().toISOString();
}

function taintedMessage(s: SkippedNode): string {
  return `taint ${s.described} is not tolerated by the Job template; to admit the node add:\n${s.suggestion}`;
}

class Run {
  private apiClient?: DispatcherKubeApi;
  private readonly log: Logger;
  private readonly policy: RetryPolicy;
  private readonly startedAt = isoNow();
  private readonly started = Date.now();
  private readonly namespace: string;
  private readonly owner: string;
  /** `--tracking-label-prefix`: the owner/node labels of the Jobs, the node-name annotation, the node records. */
  private readonly trackingPrefix: string;
  private readonly ownerLabel: string;
  /** The shared label and this install's mark (--node-label-key, --instance-label-prefix, --multi-install-suffix). */
  private readonly labelKeys: InstallLabelKeys;
  private ownerRef?: OwnerReference;
  /** The owner Job's creationTimestamp: node records older than it belong to earlier runs. */
  private ownerCreatedAt?: string;
  private template: JobManifest = {};
  /** What this run's Jobs install (kube/payload.ts), recorded on each node they finish on. */
  private payload?: string;
  private tolerations: readonly Toleration[] = [];
  private selectors: LabelSelector[] = [];
  private fanout = new FanOut([], 1);
  /** The UID of each node selected at the start (a node's name may come back as another machine). */
  private readonly selectedUids = new Map<string, string | undefined>();
  private readonly preResults: NodeResult[] = [];
  /** Every Job of this owner as last seen (list + watch). */
  private readonly jobs: JobInformer;
  private readonly pods: PodReader;
  private readonly nodes: NodeResolver;
  private readonly pending = new Set<Promise<unknown>>();
  /** UIDs of Jobs this run deleted (earlier runs' Jobs being replaced): their disappearance is expected. */
  private readonly deletedByUs = new Set<string>();
  private readonly trackedSince = new Map<string, number>();
  private readonly stuck = new Map<string, { message: string; reportedAt: number }>();
  /** Pod reads started at FailureTarget, by Job UID: the failing container's description, if any. */
  private readonly failureReads = new Map<string, Promise<string | undefined>>();
  /**
   * Watch news of a node's Job that arrived before its create call returned (a Job with TTL 0 can finish and be
   * removed that fast): the create's answer is older than this, so it must not hide how the Job ended.
   */
  private readonly newsWhileCreating = new Map<string, { job: JobLike; gone: boolean }>();
  /** Durable records the API refused (403): "nodes" (patch) or "events" (create); not tried again this run. */
  private readonly recordRefused = new Set<"nodes" | "events">();
  private readonly recordProbe = new Map<"nodes" | "events", Promise<void>>();
  private createdAny = false;
  /** The nodes the selection matched (admitted or not): what --cleanup-job-template must not clean. */
  private matchedNames = new Set<string>();
  private removedPass?: ResultsDocument["removed"];
  private readonly nodeWork: NodeWork;
  /** Nodes whose Job succeeded and whose node work after it is under way (their slot stays taken). */
  private readonly nodeWorkUnderWay = new Set<string>();
  /** `--yield-to-live-run`: the owner Job of the live run this run yielded to. */
  private yieldedTo?: string;
  /** When the loop last looked for stuck pods (Date.now()). */
  private lastStuckCheck = 0;
  private fatal?: DispatcherError;
  private timedOut = false;
  private wakeUp: () => void = () => {};
  private readonly progressLine: RateLimited<Progress>;
  private readonly requestSignal: AbortSignal;

  constructor(
    private readonly o: DispatcherOptions,
    private readonly deps: DispatcherDeps,
  ) {
    this.log = deps.logger ?? streamLogger(deps.logFormat ?? "text");
    this.policy = { ...DEFAULT_RETRY, ...deps.retry };
    this.requestSignal = deps.killSignal ?? new AbortController().signal;
    this.progressLine = new RateLimited(
      (o.progressIntervalSecs ?? DISPATCHER_DEFAULTS.progressIntervalSecs) * 1000,
      (p) => this.log.log("info", describeProgress(p), { progress: p }),
    );
    this.namespace = resolveNamespace(o.namespace, deps.env ?? process.env, deps.serviceAccountNamespaceFile);
    this.owner = computeOwnerValue(o.namePrefix ?? "");
    this.trackingPrefix = o.trackingLabelPrefix ?? TRACKING_LABEL_PREFIX;
    this.ownerLabel = jobTrackingKeys(this.trackingPrefix).owner;
    this.labelKeys = installLabelKeys(o);
    const labelSelector = `${this.ownerLabel}=${this.owner}`;
    this.jobs = new JobInformer({
      api: () => this.api,
      call: (what, fn) => this.call(what, fn),
      namespace: this.namespace,
      labelSelector,
      trackingPrefix: this.trackingPrefix,
      log: this.log,
      signal: this.requestSignal,
      spawn: (task) => this.spawn(task),
      onJob: (job) => this.onJob(job),
      onJobGone: (name, last) => this.onJobGone(name, last),
      onRefused: (code) => {
        const hint = forbiddenHint({ code, body: "" }, "watch", "jobs.batch", this.namespace) as string;
        this.setFatal(new DispatcherError(hint, this.createdAny ? 1 : 2));
      },
    });
    this.pods = new PodReader({
      listPods: (what, options) => this.call(what, (s) => this.api.listPods(this.namespace, options, s)),
      namespace: this.namespace,
      labelSelector,
      log: this.log,
      killed: () => this.killed,
    });
    this.nodeWork = new NodeWork({
      options: o,
      keys: this.labelKeys,
      timing: { ...NODE_WORK_TIMING, ...deps.nodeWorkTiming },
      readNode: (name) => this.nodes.readNode(name),
      patchNode: async (name, ops) => {
        const patch = this.api.jsonPatchNode?.bind(this.api);
        if (!patch) throw new DispatcherError("this API client cannot patch nodes", 2);
        // Conflicts are answers (the node changed): only transport errors, 429 and 5xx are retried here.
        await this.call(`patch node ${name}`, (s) => patch(name, ops, s));
      },
      readKubeletConfig: async (name) => {
        const read = this.api.getNodeProxy?.bind(this.api);
        if (!read) throw new Error("this API client cannot read node proxies");
        // One attempt, bounded: a slow kubelet must not hold a slot for an advisory note.
        return withRetry(`read kubelet configz of node ${name}`, (s) => read(name, "configz", s), {
          signal: this.requestSignal,
          policy: { ...this.policy, attempts: 1, timeoutMs: KUBELET_PROBE_TIMEOUT_MS },
        });
      },
      sleep: (ms) => sleep(ms, this.requestSignal),
      log: this.log,
    });
    this.nodes = new NodeResolver({
      listNodes: (what, options) => this.call(what, (s) => this.api.listNodes(options, s)),
      options: o,
      tolerations: () => this.tolerations,
      log: this.log,
      startedAt: this.started,
      stopping: () => this.stopping,
      signal: this.requestSignal,
    });
  }

  /** Connected lazily, after the options and the template were checked (their errors come first). */
  private get api(): DispatcherKubeApi {
    this.apiClient ??=
      this.deps.api ??
      clientNodeApi(this.deps.kubeConfig ?? loadKubeConfig(this.deps.kubeconfigPath, this.deps.context));
    return this.apiClient;
  }

  private get killed(): boolean {
    return this.requestSignal.aborted;
  }

  private get stopping(): boolean {
    return Boolean(this.deps.stopSignal?.aborted) || this.timedOut || this.killed || this.fatal !== undefined;
  }

  private call<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withRetry(what, fn, {
      signal: this.requestSignal,
      policy: this.policy,
      onRetry: (w, failure, delay) =>
        this.log.log(
          "warn",
          `${w}: ${failure.code ? `HTTP ${failure.code}` : failure.message}; retrying in ${delay} ms`,
        ),
    });
  }

  /** Run an async task in the background, keeping track of it so shutdown can wait for it. */
  private spawn(task: () => Promise<void>): void {
    const p = task()
      .catch((err) => {
        if (!this.killed) this.setFatal(err);
      })
      .finally(() => {
        this.pending.delete(p);
        this.wake();
      });
    this.pending.add(p);
  }

  private setFatal(err: unknown): void {
    if (this.fatal) return;
    this.fatal =
      err instanceof DispatcherError ? err : new DispatcherError(describeError(err), this.createdAny ? 1 : 2);
    this.log.log("error", this.fatal.message);
    this.wake();
  }

  private wake(): void {
    this.wakeUp();
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signals = [this.requestSignal, this.deps.stopSignal].filter(
        (x): x is AbortSignal => x !== undefined,
      );
      const done = () => {
        clearTimeout(timer);
        for (const signal of signals) signal.removeEventListener("abort", done);
        this.wakeUp = () => {};
        resolve();
      };
      const timer = setTimeout(done, ms);
      for (const signal of signals) signal.addEventListener("abort", done, { once: true });
      this.wakeUp = done;
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Setup

  private readTemplate(): void {
    let text: string;
    try {
      text = readFileSync(this.o.jobTemplate, "utf8");
    } catch (err) {
      throw new DispatcherError(
        `--job-template ${this.o.jobTemplate}: cannot read it (${(err as NodeJS.ErrnoException).code ?? describeError(err)}); pass the path of a batch/v1 Job YAML`,
        2,
      );
    }
    try {
      this.template = parseJobTemplate(text, this.o.jobTemplate);
      this.tolerations = templateTolerations(this.template);
      this.payload = payloadDigest(this.template);
    } catch (err) {
      if (err instanceof TemplateError) throw new DispatcherError(err.message, 2);
      throw err;
    }
  }

  /**
   * `--yield-to-live-run`: the name of another owner Job whose run is still working (it owns Jobs of this prefix and
   * has not ended), if any. One paged LIST of this prefix's Jobs, then one GET per other owner.
   */
  private async liveRun(): Promise<string | undefined> {
    const ownUid = this.ownerRef?.uid ?? "";
    const jobs: KubeJob[] = [];
    let continueToken: string | undefined;
    do {
      const page = await this.call("list Jobs", (s) =>
        this.api.listJobs(
          this.namespace,
          { labelSelector: `${this.ownerLabel}=${this.owner}`, limit: 500, continueToken },
          s,
        ),
      );
      jobs.push(...page.items.map((j) => ({ metadata: { ownerReferences: j.metadata?.ownerReferences } })));
      continueToken = page.continueToken;
    } while (continueToken);
    for (const owner of otherRunOwners(jobs, ownUid)) {
      const now = await this.call(`get Job ${owner.name}`, (s) =>
        this.api.getJob(this.namespace, owner.name, s),
      ).catch((err) => {
        if (apiFailureOf(err).code === 404) return undefined;
        throw err;
      });
      if (isLiveRun(owner, now)) return owner.name;
    }
    return undefined;
  }

  /** `--owner-job-from-pod`: the name of the Job that created that pod (in this namespace). */
  private async ownerNameFromPod(pod: string): Promise<{ name: string; uid: string }> {
    const flag = `--owner-job-from-pod ${pod}`;
    const getPod = this.api.getPod?.bind(this.api);
    if (!getPod) throw new DispatcherError(`${flag}: this API client cannot read pods`, 2);
    let found: OwnedObject;
    try {
      found = await this.call(`get pod ${this.namespace}/${pod}`, (s) => getPod(this.namespace, pod, s));
    } catch (err) {
      const hint = forbiddenHint(err, "get", "pods", this.namespace);
      if (hint) throw new DispatcherError(`${flag}: ${hint}`, 2);
      if (apiFailureOf(err).code === 404) {
        throw new DispatcherError(
          `${flag}: no such pod in namespace ${this.namespace} (the dispatcher's own pod is expected there, in the Jobs' namespace)`,
          2,
        );
      }
      throw new DispatcherError(`${flag}: ${describeError(err)}`, 2);
    }
    const owner = ownerJobOfPod(found);
    if ("problem" in owner) throw new DispatcherError(`${flag}: ${owner.problem}`, 2);
    return owner;
  }

  /** `--cleanup-job-template` is read when a node needs it, but a bad file is a usage error before anything runs. */
  private checkCleanupTemplate(path: string): void {
    try {
      parseJobTemplate(readFileSync(path, "utf8"), path);
    } catch (err) {
      const why =
        err instanceof TemplateError
          ? err.message
          : ((err as NodeJS.ErrnoException).code ?? describeError(err));
      throw new DispatcherError(
        `--cleanup-job-template ${path}: ${why}; pass the path of a batch/v1 Job YAML`,
        2,
      );
    }
  }

  private async resolveOwner(): Promise<void> {
    const fromPod = this.o.ownerJobFromPod ? await this.ownerNameFromPod(this.o.ownerJobFromPod) : undefined;
    const name = fromPod?.name ?? this.o.ownerJobName;
    if (!name) return;
    const flag = fromPod
      ? `--owner-job-from-pod ${this.o.ownerJobFromPod} (owner Job ${name})`
      : `--owner-job-name ${name}`;
    let job: KubeJob;
    try {
      job = await this.call(`get owner Job ${this.namespace}/${name}`, (s) =>
        this.api.getJob(this.namespace, name, s),
      );
    } catch (err) {
      const hint = forbiddenHint(err, "get", "jobs.batch", this.namespace);
      if (hint) throw new DispatcherError(hint, 2);
      if (apiFailureOf(err).code === 404) {
        throw new DispatcherError(
          `${flag}: no such Job in namespace ${this.namespace} (the dispatcher's own Job is expected there)`,
          2,
        );
      }
      throw new DispatcherError(`${flag}: ${describeError(err)}`, 2);
    }
    if (fromPod && job.metadata?.uid !== fromPod.uid) {
      throw new DispatcherError(
        `${flag}: the Job of that name is not the one that created the pod (uid ${job.metadata?.uid} ≠ ${fromPod.uid})`,
        2,
      );
    }
    const uid = job.metadata?.uid;
    if (!uid) throw new DispatcherError(`owner Job ${this.namespace}/${name} has no metadata.uid`, 2);
    this.ownerCreatedAt = job.metadata?.creationTimestamp as string | undefined;
    this.ownerRef = {
      apiVersion: "batch/v1",
      kind: "Job",
      name,
      uid,
      controller: false,
      blockOwnerDeletion: false,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Tracking: what the informer saw of this owner's Jobs

  /** A Job of this owner label that an earlier run (another owner Job) created. */
  private isStale(job: { metadata?: { ownerReferences?: readonly { uid: string }[] } }): boolean {
    if (!this.ownerRef) return false;
    return !(job.metadata?.ownerReferences ?? []).some((r) => r.uid === this.ownerRef?.uid);
  }

  /** What a sync knows of this Job and of its node (see decide.ts). */
  private jobState(job: JobLike, stale: boolean): JobSyncState {
    const node = jobNodeName(job, this.trackingPrefix);
    return {
      job,
      node,
      slot: node ? this.fanout.state(node) : undefined,
      expectedName: node ? jobName(this.owner, node) : undefined,
      stale,
    };
  }

  /** A Job of this owner was added or changed. */
  private onJob(job: KubeJob): void {
    this.apply(decideJobSeen(this.jobState(job, this.isStale(job))));
    const node = jobNodeName(job, this.trackingPrefix);
    if (node) this.dropSettled(node, job.metadata?.name as string);
    this.reportProgress();
    this.wake();
  }

  /**
   * A finished Job of a node that has its result can no longer hold a slot or change a result: the cache lets it
   * go, so memory holds per finished node only its result (at 100,000 nodes the cached Jobs were most of the heap).
   */
  private dropSettled(node: string, name: string): void {
    const cached = this.jobs.get(name);
    if (cached && jobOutcome(cached).terminal && this.fanout.state(node)?.kind === "done")
      this.jobs.forget(name);
  }

  /** A Job of this owner disappeared (DELETED event, or missing from a relist). */
  private onJobGone(name: string, last: JobLike): void {
    const uid = last.metadata?.uid;
    this.apply(
      decideJobGone({
        ...this.jobState(last, false),
        deletedByUs: uid !== undefined && this.deletedByUs.has(uid),
        now: isoNow(),
      }),
    );
    this.wake();
  }

  /** Carry out what a decision said (decide.ts); each action is one small step on the fan-out or the cluster. */
  private apply(actions: readonly Action[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case "adopt":
          this.fanout.adopt(a.node, a.job);
          this.trackedSince.set(a.job, Date.now());
          this.log.log("info", `node ${a.node}: adopted Job ${a.job} of this run`);
          break;
        case "finishFromJob":
          this.finishFromJob(a.node, a.job);
          break;
        case "finishNode":
          this.finishNode(a.node, a.result);
          break;
        case "finishFromRecord":
          this.log.log(
            "info",
            a.result.reason === "Unchanged"
              ? `node ${a.node}: ${a.result.message ?? "already installed"}`
              : `node ${a.node}: its Job of this run already ended, as recorded on the node; not run again`,
          );
          this.finishNode(a.node, a.result);
          break;
        case "readFailureEarly":
          this.readFailureEarly(a.node, a.job);
          break;
        case "holdNews":
          this.newsWhileCreating.set(a.job.metadata?.name as string, { job: a.job, gone: a.gone });
          break;
        case "holdSlot":
          this.fanout.setForeignActive(a.job, a.active);
          break;
        case "stopDispatching":
          this.fanout.stop();
          break;
        case "fillSlots":
          for (const node of this.fanout.takeNext()) this.spawn(() => this.dispatchOrFail(node));
          break;
        case "checkStuck":
          this.lastStuckCheck = Date.now();
          this.spawn(() => this.checkStuck());
          break;
        // createJob, wait and endLoop are steps of the async paths that asked (dispatch and the loop).
        case "createJob":
        case "wait":
        case "endLoop":
          break;
      }
    }
  }

  /** A node that failed before any Job of it ran (nothing was attempted on the node). */
  private failNode(node: string, reason: string, message: string, job?: string): void {
    this.finishNode(node, undecidedResult(node, "failed", reason, message, job));
  }

  private finishNode(node: string, result: NodeResult): void {
    const state = this.fanout.state(node);
    if (!state || state.kind === "done") return;
    this.fanout.finish(node, result);
    if (state.kind === "active") this.trackedSince.delete(state.job);
    if (result.job) this.dropSettled(node, result.job);
    this.stuck.delete(node);
    const level = result.outcome === "failed" || result.outcome === "unknown" ? "warn" : "info";
    const what =
      result.outcome === "succeeded"
        ? "succeeded"
        : `${result.outcome}${result.reason ? ` (${result.reason})` : ""}`;
    this.log.log(
      level,
      `node ${node}: ${result.job ? `Job ${result.job} ` : ""}${what}${result.message ? `: ${result.message}` : ""}`,
      {
        node,
        outcome: result.outcome,
        job: result.job,
        reason: result.reason,
      },
    );
    this.reportProgress();
    this.wake();
  }

  /** A finished Job frees its slot at once; for failures the pods are read afterwards to say why. */
  private finishFromJob(node: string, job: JobLike): void {
    const result = nodeResultFromJob(job);
    if (!result) return;
    result.node = node;
    if (result.outcome === "succeeded" && this.nodeWork.afterSuccessNeeded) {
      this.finishAfterNodeWork(node, result);
      return;
    }
    this.finishNode(node, result);
    const uid = job.metadata?.uid ?? "";
    const early = this.failureReads.get(uid);
    if (result.outcome === "failed" && (early || this.pods.readable)) {
      this.spawn(async () => {
        // Prefer what the pods said at FailureTarget; read again only if that found nothing.
        const detail = (await early) ?? (await this.pods.failureDetail(job, node));
        if (detail) result.message = `${detail}${result.reason ? ` [${result.reason}]` : ""}`;
        await this.recordOnNode(node, result);
      });
    } else this.spawn(() => this.recordOnNode(node, result));
  }

  /**
   * The Job succeeded; the node work after it (release or label) keeps the node's slot until it ends, and the node
   * succeeds only if it does (k8s-job-dispatcher: exit 0 only when every Job and its node work succeeded).
   */
  private finishAfterNodeWork(node: string, result: NodeResult): void {
    if (this.nodeWorkUnderWay.has(node) || this.fanout.state(node)?.kind === "done") return;
    this.nodeWorkUnderWay.add(node);
    this.spawn(async () => {
      let final = result;
      try {
        await this.nodeWork.afterSuccess(node, this.selectedUids.get(node));
      } catch (err) {
        if (this.killed) return;
        final = {
          ...result,
          outcome: "failed",
          reason: err instanceof NodeWorkFailure ? err.reason : "NodeWorkFailed",
          message: `Job ${result.job} succeeded, but the node work after it failed: ${describeError(err)}`,
          finishedAt: isoNow(),
        };
      } finally {
        this.nodeWorkUnderWay.delete(node);
      }
      this.finishNode(node, final);
      await this.recordOnNode(node, final);
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Durable records: the outcome outlives the Job (TTL, users, garbage collection) on the Node itself, as
  // k8s-job-dispatcher 0.3 reports it. Best-effort: chart 4.0.0's dispatcher ClusterRole grants nodes list only, so
  // recording needs `nodes: patch` (cluster-wide) and `events: create` in namespace default; a 403 is said once.

  /** Label, annotations and an Event for a node whose Job ended; never throws. */
  private async recordOnNode(node: string, result: NodeResult): Promise<void> {
    if (result.outcome !== "succeeded" && result.outcome !== "failed") return;
    const patch = nodeRecordPatch(result, this.namespace, this.trackingPrefix, this.payload);
    const failed = result.outcome === "failed";
    await Promise.all([
      this.bestEffort("nodes", `record the outcome on node ${node}`, (s) =>
        this.api.patchNode?.(node, patch, s),
      ),
      this.emitEvent(
        node,
        failed ? "JobFailed" : "JobSucceeded",
        failed
          ? `Job ${this.namespace}/${result.job} failed: ${result.message ?? result.reason ?? "no reason given"}`
          : `Job ${this.namespace}/${result.job} succeeded`,
        result.job,
      ),
    ]);
  }

  private emitEvent(node: string, reason: NodeEvent["reason"], message: string, job?: string): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const event: NodeEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${node.slice(0, MAX_EVENT_NAME_PREFIX)}.`, namespace: NODE_EVENT_NAMESPACE },
      involvedObject: { apiVersion: "v1", kind: "Node", name: node, uid: this.selectedUids.get(node) },
      ...(job
        ? {
            related: {
              apiVersion: "batch/v1" as const,
              kind: "Job" as const,
              name: job,
              namespace: this.namespace,
              uid: this.jobs.get(job)?.metadata?.uid,
            },
          }
        : {}),
      reason,
      message: message.slice(0, 1024),
      type: reason === "JobSucceeded" ? "Normal" : "Warning",
      source: { component: this.trackingPrefix },
      reportingComponent: this.trackingPrefix,
      reportingInstance: (this.deps.env ?? process.env).HOSTNAME ?? this.owner,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    return this.bestEffort("events", `report ${reason} for node ${node}`, (s) =>
      this.api.createEvent?.(NODE_EVENT_NAMESPACE, event, s),
    );
  }

  /** The first write of each kind goes alone: if it is refused, no other is sent (one 403, said once). */
  private bestEffort(
    kind: "nodes" | "events",
    what: string,
    fn: (signal: AbortSignal) => Promise<void> | undefined,
  ): Promise<void> {
    const probe = this.recordProbe.get(kind);
    if (!probe) {
      const first = this.tryRecord(kind, what, fn);
      this.recordProbe.set(kind, first);
      return first;
    }
    return probe.then(() => this.tryRecord(kind, what, fn));
  }

  private async tryRecord(
    kind: "nodes" | "events",
    what: string,
    fn: (signal: AbortSignal) => Promise<void> | undefined,
  ): Promise<void> {
    if (this.recordRefused.has(kind) || this.killed) return;
    try {
      await this.call(what, async (s) => {
        await fn(s);
      });
    } catch (err) {
      if (this.killed) return;
      if (apiFailureOf(err).code === 403) {
        if (this.recordRefused.has(kind)) return;
        this.recordRefused.add(kind);
        const grant =
          kind === "nodes"
            ? "grant the dispatcher's ServiceAccount `patch` on nodes (a ClusterRole)"
            : `grant the dispatcher's ServiceAccount \`create\` on events in namespace ${NODE_EVENT_NAMESPACE} (a Role)`;
        this.log.log(
          "warn",
          `cannot ${what}: ${describeError(err)}; outcomes are not recorded as ${kind === "nodes" ? "node labels" : "Events"} this run (${grant})`,
        );
        return;
      }
      this.log.log("warn", `cannot ${what}: ${describeError(err)}`);
    }
  }

  /**
   * FailureTarget is set while the failed pods still exist (the terminal Failed waits for them to go, and a short
   * TTL may remove the Job right after): read why now, so the result can say it.
   */
  private readFailureEarly(node: string, job: JobLike): void {
    const uid = job.metadata?.uid;
    if (!uid || !this.pods.readable || this.failureReads.has(uid)) return;
    this.failureReads.set(uid, this.pods.failureDetail(job, node));
  }

  // ---------------------------------------------------------------------------------------------------
  // Stale Jobs of earlier runs

  private async deleteStaleJobs(): Promise<void> {
    if (!this.ownerRef) return;
    const stale = [...this.jobs.all()].filter((j) => this.isStale(j)).map((j) => j.metadata?.name as string);
    if (stale.length === 0) return;
    this.log.log(
      "info",
      `deleting ${stale.length} Job(s) left by an earlier run (Foreground) before opening any slot`,
    );
    const queue = [...stale];
    const worker = async () => {
      for (let name = queue.shift(); name; name = queue.shift()) {
        try {
          await this.call(`delete Job ${name}`, (s) => this.api.deleteJob(this.namespace, name as string, s));
        } catch (err) {
          if (apiFailureOf(err).code === 404) continue;
          const hint = forbiddenHint(err, "delete", "jobs.batch", this.namespace);
          throw new DispatcherError(
            hint ?? `cannot delete Job ${name} of an earlier run: ${describeError(err)}`,
            2,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(STALE_DELETE_CONCURRENCY, stale.length) }, worker));
    const deadline =
      Date.now() + (this.o.staleDeleteTimeoutSecs ?? DISPATCHER_DEFAULTS.staleDeleteTimeoutSecs) * 1000;
    while (stale.some((n) => this.jobs.has(n))) {
      if (Date.now() >= deadline) {
        const left = stale.filter((n) => this.jobs.has(n));
        throw new DispatcherError(
          `${left.length} Job(s) of an earlier run are still being deleted after ${this.o.staleDeleteTimeoutSecs ?? DISPATCHER_DEFAULTS.staleDeleteTimeoutSecs}s (${left.slice(0, 5).join(", ")}${left.length > 5 ? ", ..." : ""}); ` +
            "refusing to run more Jobs than the parallelism allows. Check their pods' finalizers, then run again",
          2,
        );
      }
      if (this.killed) return;
      await this.waitForWake(1000);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Dispatch of one node

  /** A dispatch that throws (RBAC refusal, fatal API error) still ends its node, so the run can wind down. */
  private async dispatchOrFail(node: string): Promise<void> {
    try {
      await this.dispatch(node);
    } catch (err) {
      this.failNode(node, "DispatchFailed", describeError(err));
      throw err;
    }
  }

  private async dispatch(node: string): Promise<void> {
    const selectedUid = this.selectedUids.get(node);
    let fresh: NodeLike | undefined;
    try {
      fresh = await this.nodes.readNode(
        node,
        this.o.nodes?.length ? undefined : this.o.nodeFieldSelector || undefined,
      );
    } catch (err) {
      const hint = forbiddenHint(err, "list", "nodes");
      if (hint) throw new DispatcherError(hint, this.createdAny ? 1 : 2);
      if (this.killed) return;
      this.failNode(
        node,
        "NodeUnreadable",
        `could not re-read the node before dispatch: ${describeError(err)}`,
      );
      return;
    }
    const byName = Boolean(this.o.nodes?.length);
    const taint = fresh && !this.o.ignoreNodeTaints ? blockingTaint(fresh, this.tolerations) : undefined;
    const record = fresh ? readNodeRecord(fresh, this.trackingPrefix) : undefined;
    const actions = decideDispatch({
      node,
      dispatching: this.fanout.state(node)?.kind === "dispatching",
      fresh,
      selectedUid,
      recorded: this.ownerCreatedAt
        ? resultFromNodeRecord(node, record, {
            namespace: this.namespace,
            job: jobName(this.owner, node),
            notBefore: this.ownerCreatedAt,
          })
        : undefined,
      unchanged: this.o.skipInstalledNodes ? unchangedResult(node, record, this.payload) : undefined,
      byName,
      fieldSelector: this.o.nodeFieldSelector,
      selectors: this.selectors,
      selectorText: describeSelectors(this.o.nodeSelectors ?? []),
      tainted: taint ? taintedMessage(skippedNode(node, taint)) : undefined,
      backInSelection:
        fresh && this.o.removedFromSelectors
          ? this.o.removedFromSelectors.some((x) => parseLabelSelector(x).matches(fresh?.metadata?.labels))
          : undefined,
      missingFacts: fresh
        ? missingNodeFacts(nodeFacts(fresh), {
            runtimeVersion: this.o.requireNodeRuntimeVersion,
            machineId: this.o.requireNodeMachineId,
          })
        : undefined,
    });
    for (const a of actions) {
      if (a.kind !== "createJob") this.apply([a]);
      else if (await this.beforeDispatch(node, fresh))
        await this.createJob(node, fresh ? nodeFacts(fresh) : {});
    }
  }

  /** The node work before the Job (demote, claim); false when it failed the node (no Job then). */
  private async beforeDispatch(node: string, fresh: NodeLike | undefined): Promise<boolean> {
    if (!this.nodeWork.beforeDispatchNeeded) return true;
    try {
      await this.nodeWork.beforeDispatch(node, fresh?.metadata?.uid ?? this.selectedUids.get(node));
      return true;
    } catch (err) {
      if (this.killed) return false;
      const reason = err instanceof NodeWorkFailure ? err.reason : "NodeWorkFailed";
      this.failNode(node, reason, `before its Job: ${describeError(err)}`);
      return false;
    }
  }

  private async createJob(node: string, facts: NodeFacts): Promise<void> {
    const name = jobName(this.owner, node);
    const body = instantiateJob(this.template, {
      jobName: name,
      node,
      ownerValue: this.owner,
      namespace: this.namespace,
      owner: this.ownerRef,
      trackingPrefix: this.trackingPrefix,
      facts,
    });
    for (let attempt = 1; ; attempt++) {
      if (this.killed) return;
      try {
        const created = await this.call(`create Job ${name}`, (s) =>
          this.api.createJob(this.namespace, body, s),
        );
        this.createdAny = true;
        this.tracked(node, name);
        this.log.log("info", `node ${node}: created Job ${name}`, { node, job: name });
        if (this.applyHeldNews(name, created.metadata?.uid)) return;
        this.jobs.remember(created);
        const seen = this.jobs.get(name);
        if (seen && jobOutcome(seen).terminal) this.finishFromJob(node, seen);
        return;
      } catch (err) {
        if (this.killed) return;
        const failure = apiFailureOf(err);
        const failed = decideCreateFailure({
          node,
          code: failure.code,
          message: failure.message,
          described: describeError(err),
          forbidden: forbiddenHint(err, "create", "jobs.batch", this.namespace),
          createdAny: this.createdAny,
          jobTemplate: this.o.jobTemplate,
        });
        if (failed.kind === "fatal") throw new DispatcherError(failed.message, failed.exitCode);
        if (failed.kind === "failNode") {
          this.failNode(node, failed.reason, failed.message, name);
          return;
        }
        if ((await this.resolveConflict(node, name)) === "done") return;
        if (attempt >= RECREATE_ATTEMPTS) {
          this.failNode(
            node,
            "CreateFailed",
            `Job ${name} of an earlier run was still being deleted after ${(RECREATE_ATTEMPTS * RECREATE_INTERVAL_MS) / 1000}s`,
            name,
          );
          return;
        }
        await sleep(RECREATE_INTERVAL_MS, this.requestSignal).catch(() => undefined);
      }
    }
  }

  /**
   * Watch news of this Job that arrived while its node was being dispatched (held by `holdNews`): applied now that
   * the node tracks the Job, when it is news of this same Job. True when it was applied.
   */
  private applyHeldNews(name: string, uid: string | undefined): boolean {
    const news = this.newsWhileCreating.get(name);
    this.newsWhileCreating.delete(name);
    if (!news || news.job.metadata?.uid !== uid) return false;
    if (news.gone) this.onJobGone(name, news.job);
    else this.onJob(news.job as KubeJob);
    return true;
  }

  private tracked(node: string, name: string): void {
    if (this.fanout.state(node)?.kind === "dispatching") this.fanout.created(node, name);
    this.trackedSince.set(name, Date.now());
  }

  /**
   * A Job with this node's name exists (409): adopt it when it is this run's (same owner label and owner UID),
   * replace it when an earlier run left it (Foreground delete, then create again), fail the node when it is not ours.
   */
  private async resolveConflict(node: string, name: string): Promise<"done" | "retry"> {
    let existing: KubeJob;
    try {
      existing = await this.call(`get Job ${name}`, (s) => this.api.getJob(this.namespace, name, s));
    } catch (err) {
      if (apiFailureOf(err).code === 404) {
        const held = this.newsWhileCreating.get(name);
        if (!held || decideVanishedConflict(held) === "retry") return "retry";
        this.tracked(node, name);
        this.applyHeldNews(name, held.job.metadata?.uid);
        return "done";
      }
      this.failNode(
        node,
        "CreateFailed",
        `Job ${name} exists but cannot be read: ${describeError(err)}`,
        name,
      );
      return "done";
    }
    const verdict = decideConflict({
      ownerLabel: existing.metadata?.labels?.[this.ownerLabel],
      owner: this.owner,
      stale: this.isStale(existing),
      beingDeleted: Boolean(existing.metadata?.deletionTimestamp),
    });
    if (verdict === "wait") return "retry";
    if (verdict === "nameTaken") {
      this.failNode(
        node,
        "NameTaken",
        `a Job named ${name} exists but is not this release's (its ${this.ownerLabel} label is ${JSON.stringify(existing.metadata?.labels?.[this.ownerLabel] ?? null)}); delete it or choose another --name-prefix`,
        name,
      );
      return "done";
    }
    if (verdict === "adopt") {
      this.tracked(node, name);
      this.log.log("info", `node ${node}: adopted existing Job ${name} of this run`);
      // The GET's answer can be older than the watch's news: a Job that finished and was removed (TTL) meanwhile
      // would otherwise stay cached as running, and its node in flight for good (the run never ended).
      if (this.applyHeldNews(name, existing.metadata?.uid)) return "done";
      this.jobs.remember(existing);
      const latest = this.jobs.get(name) ?? existing;
      if (jobOutcome(latest).terminal) this.finishFromJob(node, latest);
      return "done";
    }
    if (existing.metadata?.uid) this.deletedByUs.add(existing.metadata.uid);
    try {
      if (verdict === "deleteStale") {
        this.log.log("info", `node ${node}: replacing Job ${name} left by an earlier run`);
        await this.call(`delete Job ${name}`, (s) => this.api.deleteJob(this.namespace, name, s));
      }
    } catch (err) {
      if (apiFailureOf(err).code !== 404) {
        this.failNode(
          node,
          "CreateFailed",
          `cannot delete Job ${name} of an earlier run: ${describeError(err)}`,
          name,
        );
        return "done";
      }
    }
    return "retry";
  }

  // ---------------------------------------------------------------------------------------------------
  // Stuck pods

  private async checkStuck(): Promise<void> {
    const graceMs = (this.o.stuckAfterSecs ?? DISPATCHER_DEFAULTS.stuckAfterSecs) * 1000;
    const now = Date.now();
    const candidates = [...this.fanout.activeJobs()].filter(
      ([job]) => now - (this.trackedSince.get(job) ?? now) >= graceMs,
    );
    if (candidates.length === 0) return;
    const pods = await this.pods.byJob(
      candidates.map(([job]) => ({ name: job, uid: this.jobs.get(job)?.metadata?.uid })),
    );
    if (!pods) return;
    for (const [job, node] of candidates) {
      const why = describeStuckPod(pods.get(job) ?? []);
      const previous = this.stuck.get(node);
      const verdict = decideStuck({ why, reportedAt: previous?.reportedAt, now, repeatMs: STUCK_REPEAT_MS });
      if (verdict === "clear" || why === undefined) this.stuck.delete(node);
      else if (verdict === "update" && previous) previous.message = why;
      else {
        this.log.log("warn", `node ${node}: Job ${job} is stuck: ${why}`, { node, job, reason: "Stuck" });
        this.stuck.set(node, { message: why, reportedAt: now });
        await this.emitEvent(node, "JobPending", `Job ${this.namespace}/${job} is not running: ${why}`, job);
      }
    }
  }

  private reportProgress(): void {
    const p = this.fanout.progress();
    this.deps.onProgress?.(p);
    this.progressLine.offer(p);
  }

  // ---------------------------------------------------------------------------------------------------
  // The run

  async run(): Promise<ResultsDocument> {
    let timeoutTimer: NodeJS.Timeout | undefined;
    try {
      this.selectors = checkOptions(this.o);
      this.log.log("info", `kata-deploy dispatcher: namespace ${this.namespace}, owner ${this.owner}`);
      this.readTemplate();
      if (this.o.cleanupJobTemplate) this.checkCleanupTemplate(this.o.cleanupJobTemplate);
      void this.api;
      if (this.o.timeoutSecs !== undefined && this.o.timeoutSecs > 0) {
        timeoutTimer = setTimeout(() => {
          this.timedOut = true;
          this.log.log("warn", `timeout: ${this.o.timeoutSecs}s elapsed; no further Jobs are created`);
          this.wake();
        }, this.o.timeoutSecs * 1000);
      }
      await this.resolveOwner().catch((err) => this.rethrowSetup(err, "get", "jobs.batch", this.namespace));
      if (this.o.yieldToLiveRun) {
        this.yieldedTo = await this.liveRun().catch((err) =>
          this.rethrowSetup(err, "list", "jobs.batch", this.namespace),
        );
        if (this.yieldedTo) {
          this.log.log(
            "info",
            `another run of ${this.owner} is still working (owner Job ${this.namespace}/${this.yieldedTo}); yielding to it, nothing dispatched`,
          );
          return this.finish();
        }
      }
      let targets = await this.selectNodes();
      if (this.o.cleanupJobTemplate && !this.o.dryRun && (await this.cleanRemovedNodes())) {
        // A cleaned node may have come back meanwhile: select again, waits included.
        this.preResults.length = 0;
        this.selectedUids.clear();
        targets = await this.selectNodes();
      }
      this.fanout = new FanOut(targets, this.o.parallelism ?? PARALLELISM_DEFAULT);
      if (this.o.dryRun) return this.finish(targets);
      if (targets.length === 0) return this.finish();
      this.log.log(
        "info",
        `dispatching ${targets.length} node(s), at most ${this.fanout.parallelism} at a time`,
      );

      await this.jobs.relist().catch((err) => this.rethrowSetup(err, "list", "jobs.batch", this.namespace));
      // The watch must be up before any slot opens: without it no Job could ever be seen finishing.
      await this.jobs.watchFromLastList();
      if (this.fatal) throw this.fatal;
      await this.deleteStaleJobs();
      await this.loop();
      return this.finish();
    } catch (err) {
      this.setFatal(err);
      return this.finish();
    } finally {
      clearTimeout(timeoutTimer);
    }
  }

  /**
   * The names of the nodes to dispatch to; the tainted ones become skipped results. Only each node's UID is kept
   * (to notice a replaced node at dispatch): the Node objects are let go before the Jobs start to fill memory.
   */
  private async selectNodes(): Promise<string[]> {
    const { admitted, skipped } = await this.nodes
      .resolve()
      .catch((err) => this.rethrowSetup(err, "list", "nodes"));
    // Ownership is judged on the matched set: a tainted or cordoned node is still this install's.
    this.matchedNames = new Set([
      ...admitted.map((n) => n.metadata?.name as string),
      ...skipped.map((s) => s.node),
    ]);
    for (const s of skipped) {
      this.log.log(
        "info",
        `skipping node ${s.node}: taint ${s.described} is not tolerated by the Job template (a DaemonSet would skip it too)`,
      );
      this.preResults.push(undecidedResult(s.node, "skipped", "Tainted", taintedMessage(s)));
    }
    if (admitted.length === 0) {
      const why = this.o.nodes?.length
        ? undefined
        : noEligibleNodesError(
            skipped,
            this.o.waitForNodesSecs ?? DISPATCHER_DEFAULTS.waitForNodesSecs,
            this.o.nodeSelectors ?? [],
          );
      if (why) throw new DispatcherError(why, this.timedOut ? 1 : 2);
      this.log.log("info", "nothing to do: no node selected");
    }
    for (const node of admitted) {
      const satisfied = this.o.skipSatisfiedNodes
        ? satisfiedResult(node, this.labelKeys, this.o.nodeLabel ?? "", this.o.requireNodeHandlers ?? [])
        : undefined;
      if (satisfied) this.preResults.push(satisfied);
      else this.selectedUids.set(node.metadata?.name as string, node.metadata?.uid);
    }
    if (this.o.skipSatisfiedNodes && admitted.length > 0) {
      this.log.log(
        "info",
        `${admitted.length - this.selectedUids.size} of ${admitted.length} node(s) already satisfied (--skip-satisfied-nodes)`,
      );
    }
    return [...this.selectedUids.keys()];
  }

  /**
   * `--cleanup-job-template` (§3.7): nodes carrying this install's mark that the selection no longer matches run the
   * cleanup template first, as a run of its own (prefix `<prefix>-removed`, the same owner, labels released after
   * success). True when it cleaned any; a failure there ends the run before the install pass.
   */
  private async cleanRemovedNodes(): Promise<boolean> {
    const marked: string[] = [];
    let continueToken: string | undefined;
    do {
      const page = await this.call("list nodes marked by this install", (s) =>
        this.api.listNodes(
          {
            labelSelector: this.labelKeys.mark,
            limit: this.o.nodePageSize ?? DISPATCHER_DEFAULTS.nodePageSize,
            continueToken,
          },
          s,
        ),
      ).catch((err) => this.rethrowSetup(err, "list", "nodes"));
      marked.push(...page.items.map((n) => n.metadata?.name as string));
      continueToken = page.continueToken;
    } while (continueToken);
    const removed = marked.filter((n) => !this.matchedNames.has(n)).sort();
    if (removed.length === 0) return false;
    this.log.log(
      "info",
      `cleaning ${removed.length} node(s) this install marks (${this.labelKeys.mark}) but no longer selects, before installing: ${removed.slice(0, 10).join(", ")}${removed.length > 10 ? ", ..." : ""}`,
    );
    const doc = await runDispatcher(
      {
        ...this.o,
        jobTemplate: this.o.cleanupJobTemplate as string,
        cleanupJobTemplate: undefined,
        namePrefix: `${this.o.namePrefix}-removed`,
        ownerJobName: this.ownerRef?.name,
        ownerJobFromPod: undefined,
        yieldToLiveRun: false,
        nodes: removed,
        nodeSelectors: [],
        ignoreNodeTaints: true,
        skipSatisfiedNodes: false,
        skipInstalledNodes: false,
        // Only the release of this install's labels: no label value, claim, checks or taints.
        removeNodeLabel: true,
        nodeLabel: undefined,
        claimNodePending: false,
        requireNodeHandlers: undefined,
        waitNodeReadySecs: 0,
        removeNodeTaints: undefined,
        requireNodeRuntimeVersion: false,
        requireNodeMachineId: false,
        kubeletTimeoutWarnSecs: 0,
        removedFromSelectors: this.o.nodes?.length ? [] : (this.o.nodeSelectors ?? []),
      },
      { ...this.deps, api: this.api },
    );
    this.removedPass = { owner: doc.owner, nodes: doc.nodes, counts: doc.counts };
    if (doc.exitCode !== 0) {
      const failed = doc.nodes.filter((n) => n.outcome !== "succeeded").map((n) => n.node);
      throw new DispatcherError(
        `the cleanup of node(s) no longer selected failed (${failed.join(", ") || doc.error}); the install pass did not run: ${doc.error ?? "see the removed nodes' results"}`,
        1,
      );
    }
    return true;
  }

  private rethrowSetup(err: unknown, verb: string, resource: string, namespace?: string): never {
    if (err instanceof DispatcherError) throw err;
    const hint = forbiddenHint(err, verb, resource, namespace);
    if (hint) throw new DispatcherError(hint, 2);
    if (err instanceof KubeRequestError && err.failure.code === 400) {
      throw new DispatcherError(
        `the API server refused the request: ${err.message}; check --node-selector / --node-field-selector`,
        2,
      );
    }
    throw new DispatcherError(`cluster error before any Job was created: ${describeError(err)}`, 2);
  }

  /** Each tick reads the run's state afresh, decides (decide.ts `decideLoop`), acts, and waits for news. */
  private async loop(): Promise<void> {
    const pollMs = Math.max(0.05, this.o.pollIntervalSecs ?? DISPATCHER_DEFAULTS.pollIntervalSecs) * 1000;
    const stuckEveryMs = Math.max(
      50,
      Math.min(pollMs, ((this.o.stuckAfterSecs ?? DISPATCHER_DEFAULTS.stuckAfterSecs) * 1000) / 4),
    );
    this.lastStuckCheck = Date.now();
    for (;;) {
      const actions = decideLoop({
        killed: this.killed,
        stopping: this.stopping,
        stopped: this.fanout.isStopped,
        finished: this.fanout.isFinished(),
        dispatching: this.fanout.dispatchingCount(),
        sinceStuckCheckMs: Date.now() - this.lastStuckCheck,
        stuckEveryMs,
      });
      this.apply(actions);
      if (actions.some((a) => a.kind === "endLoop")) return;
      await this.waitForWake(stuckEveryMs);
    }
  }

  private async finish(plan?: string[]): Promise<ResultsDocument> {
    this.jobs.stop();
    // Background work (pod reads for failure reasons, dispatches being abandoned) ends within its retry budget.
    const deadline = Date.now() + (this.killed ? 2000 : 30_000);
    while (this.pending.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.pending]), sleep(100)]);
    }
    const interrupted = Boolean(this.deps.stopSignal?.aborted) || this.killed;
    // A dry run dispatched nothing on purpose: its queued nodes are the plan, not failures.
    for (const [node, state] of plan ? [] : this.fanout.unfinished()) {
      const job = state.kind === "active" ? state.job : undefined;
      this.fanout.finish(
        node,
        unfinishedResult(node, {
          job,
          seen: job ? this.jobs.get(job) : undefined,
          stuck: this.stuck.get(node)?.message,
          timedOut: this.timedOut,
          timeoutSecs: this.o.timeoutSecs,
          interrupted,
          error: this.fatal?.message,
        }),
      );
    }
    const nodes = [...this.preResults, ...this.fanout.results()].sort((a, b) =>
      a.node < b.node ? -1 : a.node > b.node ? 1 : 0,
    );
    const counts = countResults(nodes);
    const exitCode = decideExitCode({
      error: this.fatal,
      failed: counts.failed,
      unknown: counts.unknown,
      timedOut: this.timedOut,
      interrupted,
    });
    const doc: ResultsDocument = {
      runId: this.ownerRef?.uid ?? randomUUID(),
      owner: this.owner,
      ownerLabel: this.ownerLabel,
      ownerJob: this.ownerRef ? { name: this.ownerRef.name, uid: this.ownerRef.uid } : undefined,
      namespace: this.namespace,
      startedAt: this.startedAt,
      finishedAt: isoNow(),
      exitCode,
      error: this.fatal?.message,
      dryRun: Boolean(this.o.dryRun),
      ...(this.yieldedTo ? { yieldedTo: this.yieldedTo } : {}),
      timedOut: this.timedOut,
      interrupted,
      plan: plan?.map((node) => ({ node, job: jobName(this.owner, node) })),
      nodes,
      counts,
      ...(this.removedPass ? { removed: this.removedPass } : {}),
    };
    if (!this.killed && !plan) this.progressLine.flush(this.fanout.progress());
    return doc;
  }
}

/** Run the dispatcher to completion (or stop/kill) and return its results document. Never exits the process. */
export async function runDispatcher(
  options: DispatcherOptions,
  deps: DispatcherDeps = {},
): Promise<ResultsDocument> {
  let run: Run;
  try {
    run = new Run(options, deps);
  } catch (err) {
    const message = describeError(err);
    (deps.logger ?? silentLogger).log("error", message);
    const now = isoNow();
    return {
      runId: randomUUID(),
      owner: options.namePrefix ? computeOwnerValue(options.namePrefix) : "",
      namespace: options.namespace ?? "",
      startedAt: now,
      finishedAt: now,
      exitCode: 2,
      error:
        err instanceof DispatcherError ? err.message : `cannot configure the Kubernetes client: ${message}`,
      dryRun: Boolean(options.dryRun),
      timedOut: false,
      interrupted: false,
      nodes: [],
      counts: { total: 0, targeted: 0, succeeded: 0, failed: 0, skipped: 0, unknown: 0 },
    };
  }
  return run.run();
}
