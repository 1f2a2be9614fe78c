// The dispatcher run: resolve nodes, clear Jobs of earlier runs, then keep at most P per-node Jobs in flight,
// tracking all of them through ONE watch on the owner's Jobs. `runDispatcher` is the programmatic entry point used by
// the CLI, the tests and the bench; it returns the results document instead of exiting.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import {
  describePodFailure,
  describeStuckPod,
  jobNodeName,
  jobOutcome,
  nodeResultFromJob,
  type NodeResult,
  type PodLike,
} from "../kube/jobStatus";
import { FieldSelectorParseError, parseFieldSelector } from "../kube/fieldSelector";
import { parseLabelSelector, SelectorParseError, type LabelSelector } from "../kube/labelSelector";
import {
  admitNodes,
  blockingTaint,
  describeSelectors,
  noEligibleNodesError,
  skippedNode,
  type NodeLike,
  type SkippedNode,
} from "./admission";
import { FanOut, type Progress } from "./fanout";
import {
  apiFailureOf,
  clientNodeApi,
  DEFAULT_RETRY,
  KubeRequestError,
  sleep,
  withRetry,
  type DispatcherKubeApi,
  type KubeJob,
  type RetryPolicy,
  type WatchHandle,
} from "./kubeApi";
import {
  describeProgress,
  RateLimited,
  silentLogger,
  streamLogger,
  type LogFormat,
  type Logger,
} from "./log";
import { jobName, OWNER_LABEL, ownerValue as computeOwnerValue } from "./naming";
import {
  instantiateJob,
  parseJobTemplate,
  templateTolerations,
  TemplateError,
  type JobManifest,
  type OwnerReference,
} from "./template";

/**
 * What the dispatcher keeps of a Job: identity, labels, owner, node and status, not the pod template. Memory
 * stays proportional to the fleet with a small constant (a full Job carries the whole template, ~5 KB).
 */
function slimJob(job: KubeJob): KubeJob {
  const m = job.metadata ?? {};
  const nodeName = job.spec?.template?.spec?.nodeName;
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
      deletionTimestamp: m.deletionTimestamp,
      labels: m.labels,
      annotations: m.annotations,
      ownerReferences: m.ownerReferences,
    },
    ...(nodeName ? { spec: { template: { spec: { nodeName } } } } : {}),
    status: job.status,
  } as KubeJob;
}

/** What node resolution, admission and re-validation read of a Node (a full Node is several KB). */
function slimNode(node: NodeLike): NodeLike {
  const m = node.metadata ?? {};
  return {
    metadata: { name: m.name, uid: m.uid, labels: m.labels, resourceVersion: m.resourceVersion },
    spec: { taints: node.spec?.taints, unschedulable: node.spec?.unschedulable },
  };
}

export interface DispatcherOptions {
  /** Path of the Job template (YAML, one batch/v1 Job). */
  jobTemplate: string;
  namePrefix: string;
  ownerJobName?: string;
  /** Most Jobs of this owner active at once (default 100), clamped to [1, nodes]. */
  parallelism?: number;
  /** Explicit node names; when non-empty, selectors are ignored. */
  nodes?: string[];
  /** One label selector per entry, unioned (OR); none means every node. */
  nodeSelectors?: string[];
  namespace?: string;
  nodeFieldSelector?: string;
  nodePageSize?: number;
  /** Re-check interval while waiting for nodes (and for stuck-pod checks), seconds. Default 5. */
  pollIntervalSecs?: number;
  ignoreNodeTaints?: boolean;
  waitForNodesSecs?: number;
  nodeSettleSecs?: number;
  /** Whole-run deadline, seconds; unset means none. */
  timeoutSecs?: number;
  /** How long a pod may stay unschedulable / unpullable before the node is reported stuck, seconds. Default 120. */
  stuckAfterSecs?: number;
  /** How long to wait for Jobs of earlier runs to be deleted, seconds. Default 120. */
  staleDeleteTimeoutSecs?: number;
  dryRun?: boolean;
  /** Progress line interval, seconds. Default 10. */
  progressIntervalSecs?: number;
}

export interface DispatcherDeps {
  /** Kubeconfig to use; default: in-cluster when running in a pod, else the default kubeconfig loading rules. */
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  context?: string;
  api?: DispatcherKubeApi;
  /** Graceful stop (SIGTERM): dispatch nothing more, report, exit 1. */
  stopSignal?: AbortSignal;
  /** Abrupt end (tests of restart safety): abandon everything at once, as a killed process would. */
  killSignal?: AbortSignal;
  logger?: Logger;
  logFormat?: LogFormat;
  /** Environment for POD_NAMESPACE. Default process.env. */
  env?: Record<string, string | undefined>;
  serviceAccountNamespaceFile?: string;
  retry?: Partial<RetryPolicy>;
  /** Called with every progress change (tests, bench). */
  onProgress?: (p: Progress) => void;
}

export interface ResultsCounts {
  total: number;
  targeted: number;
  succeeded: number;
  failed: number;
  skipped: number;
}

export interface ResultsDocument {
  runId: string;
  owner: string;
  ownerJob?: { name: string; uid: string };
  namespace: string;
  startedAt: string;
  finishedAt: string;
  /** 0 all targeted nodes succeeded; 1 some node failed, timeout or interrupt; 2 usage or cluster error before any Job. */
  exitCode: 0 | 1 | 2;
  error?: string;
  dryRun: boolean;
  timedOut: boolean;
  interrupted: boolean;
  /** Dry run: the Jobs that would be created. */
  plan?: { node: string; job: string }[];
  nodes: NodeResult[];
  counts: ResultsCounts;
}

/** A fatal condition with the exit code it maps to and a message that says what to fix. */
export class DispatcherError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const STALE_DELETE_CONCURRENCY = 16;
const RECREATE_ATTEMPTS = 30;
const RECREATE_INTERVAL_MS = 2000;
const STUCK_REPEAT_MS = 5 * 60_000;

/** First non-blank of: the flag, $POD_NAMESPACE, the ServiceAccount namespace file, "default". */
export function resolveNamespace(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  saFile = SA_NAMESPACE_FILE,
): string {
  if (flag?.trim()) return flag.trim();
  if (env.POD_NAMESPACE?.trim()) return env.POD_NAMESPACE.trim();
  try {
    const fromFile = readFileSync(saFile, "utf8").trim();
    if (fromFile) return fromFile;
  } catch {
    // Not in a pod: fall through.
  }
  return "default";
}

/** In-cluster config when a ServiceAccount token is mounted (and no kubeconfig was asked for), else kubeconfig. */
export function loadKubeConfig(path?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    const source = path
      ? `--kubeconfig ${path}`
      : process.env.KUBECONFIG
        ? `KUBECONFIG=${process.env.KUBECONFIG}`
        : "the default kubeconfig";
    throw new DispatcherError(
      `${source}: cannot load it (${describeError(err)}); pass a valid kubeconfig or run in-cluster`,
      2,
    );
  }
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new DispatcherError(
        `--context ${context}: no such context in the kubeconfig (available: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
        2,
      );
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new DispatcherError(
      "no Kubernetes cluster configured: run in a pod with a ServiceAccount, or pass --kubeconfig / set KUBECONFIG",
      2,
    );
  }
  return kc;
}

/** Validate every option that can be checked without the cluster; returns the parsed label selectors. */
export function checkOptions(o: DispatcherOptions): LabelSelector[] {
  const problems: string[] = [];
  if (!o.jobTemplate) problems.push("--job-template is required (path of the per-node Job YAML)");
  if (!o.namePrefix || !o.namePrefix.trim())
    problems.push("--name-prefix is required and must not be blank (e.g. kata-deploy-install)");
  const positive = (name: string, v: number | undefined, min: number) => {
    if (v !== undefined && (!Number.isFinite(v) || v < min))
      problems.push(`${name} must be a number >= ${min} (got ${v})`);
  };
  positive("--parallelism", o.parallelism, 1);
  positive("--node-page-size", o.nodePageSize, 1);
  positive("--poll-interval-secs", o.pollIntervalSecs, 0);
  positive("--wait-for-nodes-secs", o.waitForNodesSecs, 0);
  positive("--node-settle-secs", o.nodeSettleSecs, 0);
  positive("--timeout-secs", o.timeoutSecs, 0);
  positive("--stuck-after-secs", o.stuckAfterSecs, 0);
  const selectors: LabelSelector[] = [];
  for (const s of o.nodeSelectors ?? []) {
    try {
      selectors.push(parseLabelSelector(s));
    } catch (err) {
      if (!(err instanceof SelectorParseError)) throw err;
      problems.push(`--node-selector ${JSON.stringify(s)} is not a valid label selector: ${err.message}`);
    }
  }
  if (o.nodeFieldSelector) {
    try {
      parseFieldSelector(o.nodeFieldSelector);
    } catch (err) {
      if (!(err instanceof FieldSelectorParseError)) throw err;
      problems.push(
        `--node-field-selector ${JSON.stringify(o.nodeFieldSelector)} is not a valid field selector: ${err.message}`,
      );
    }
  }
  if (problems.length > 0) throw new DispatcherError(problems.join("\n"), 2);
  return selectors;
}

function isoNow(): string {
  return new Date().toISOString();
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Turn an RBAC refusal into a message naming the missing permission. */
function forbiddenHint(err: unknown, verb: string, resource: string, namespace?: string): string | undefined {
  const failure = apiFailureOf(err);
  if (failure.code !== 403 && failure.code !== 401) return undefined;
  const where = namespace ? ` in namespace ${namespace}` : " (cluster-wide)";
  return failure.code === 401
    ? `the API server rejected the credentials (401 Unauthorized) while trying to ${verb} ${resource}: check the ServiceAccount token or kubeconfig`
    : `missing permission: ${verb} ${resource}${where} (${failure.message}). Grant it to the dispatcher's ServiceAccount (chart 4.0.0: ClusterRole nodes [list]; Role jobs.batch [create, get, list, watch, delete])`;
}

class Run {
  private apiClient?: DispatcherKubeApi;
  private readonly log: Logger;
  private readonly policy: RetryPolicy;
  private readonly startedAt = isoNow();
  private readonly started = Date.now();
  private namespace = "default";
  private owner = "";
  private ownerRef?: OwnerReference;
  private template: JobManifest = {};
  private selectors: LabelSelector[] = [];
  private fanout = new FanOut([], 1);
  private readonly selected = new Map<string, NodeLike>();
  private readonly preResults: NodeResult[] = [];
  /** Every Job of this owner as last seen (list + watch): the informer cache. */
  private readonly jobs = new Map<string, KubeJob>();
  private resourceVersion = "";
  /** When each cached Job was last written (a counter): a relist snapshot must not override newer knowledge. */
  private readonly cachedAt = new Map<string, number>();
  private cacheClock = 0;
  private watch?: WatchHandle;
  private watchGeneration = 0;
  private closing = false;
  private readonly pending = new Set<Promise<unknown>>();
  /** UIDs of Jobs this run deleted (earlier runs' Jobs being replaced): their disappearance is expected. */
  private readonly deletedByUs = new Set<string>();
  private readonly trackedSince = new Map<string, number>();
  private readonly stuck = new Map<string, { message: string; reportedAt: number }>();
  private podsReadable = true;
  /** Pod reads started at FailureTarget, by Job UID: the failing container's description, if any. */
  private readonly failureReads = new Map<string, Promise<string | undefined>>();
  private createdAny = false;
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
    this.progressLine = new RateLimited((o.progressIntervalSecs ?? 10) * 1000, (p) =>
      this.log.log("info", describeProgress(p), { progress: p }),
    );
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
    } catch (err) {
      if (err instanceof TemplateError) throw new DispatcherError(err.message, 2);
      throw err;
    }
  }

  private async resolveOwner(): Promise<void> {
    const name = this.o.ownerJobName;
    if (!name) return;
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
          `--owner-job-name ${name}: no such Job in namespace ${this.namespace} (the dispatcher's own Job is expected there)`,
          2,
        );
      }
      throw new DispatcherError(`--owner-job-name ${name}: ${describeError(err)}`, 2);
    }
    const uid = job.metadata?.uid;
    if (!uid) throw new DispatcherError(`owner Job ${this.namespace}/${name} has no metadata.uid`, 2);
    this.ownerRef = {
      apiVersion: "batch/v1",
      kind: "Job",
      name,
      uid,
      controller: false,
      blockOwnerDeletion: false,
    };
  }

  private async listAllNodes(
    labelSelector: string | undefined,
    fieldSelector: string | undefined,
  ): Promise<NodeLike[]> {
    const items: NodeLike[] = [];
    let continueToken: string | undefined;
    const limit = Math.max(1, Math.floor(this.o.nodePageSize ?? 500));
    for (let pages = 0; pages < 1_000_000; pages++) {
      try {
        const page = await this.call(`list nodes${labelSelector ? ` [${labelSelector}]` : ""}`, (s) =>
          this.api.listNodes({ labelSelector, fieldSelector, limit, continueToken }, s),
        );
        for (const node of page.items) items.push(slimNode(node));
        continueToken = page.continueToken;
        if (!continueToken) return items;
      } catch (err) {
        const failure = apiFailureOf(err);
        // An expired continue token: start the listing over, as the API server suggests.
        if (failure.code === 410 && continueToken) {
          items.length = 0;
          continueToken = undefined;
          continue;
        }
        throw err;
      }
    }
    return items;
  }

  /** One node by name through LIST + fieldSelector (chart 4.0.0 grants nodes `list`, not `get`). */
  private async readNode(name: string, extraFieldSelector?: string): Promise<NodeLike | undefined> {
    const fieldSelector = [`metadata.name=${name}`, extraFieldSelector].filter(Boolean).join(",");
    const page = await this.call(`list node ${name}`, (s) =>
      this.api.listNodes({ fieldSelector, limit: 1 }, s),
    );
    return page.items.find((n) => n.metadata?.name === name);
  }

  private async selectionRound(): Promise<{ admitted: NodeLike[]; skipped: SkippedNode[] }> {
    const passes = this.o.nodeSelectors?.length ? this.o.nodeSelectors : [undefined];
    let all: NodeLike[] = [];
    // concat, not push(...): a 100,000-node pass spread as arguments overflows the call stack.
    for (const pass of passes)
      all = all.concat(await this.listAllNodes(pass, this.o.nodeFieldSelector || undefined));
    const { admitted, skipped } = admitNodes(
      all,
      templateTolerations(this.template),
      Boolean(this.o.ignoreNodeTaints),
    );
    return { admitted, skipped };
  }

  private async resolveNodes(): Promise<{ admitted: NodeLike[]; skipped: SkippedNode[] }> {
    const explicit = [...new Set((this.o.nodes ?? []).map((n) => n.trim()).filter(Boolean))].sort();
    if (explicit.length > 0) {
      const found: NodeLike[] = [];
      const missing: string[] = [];
      for (const name of explicit) {
        const node = await this.readNode(name);
        if (node) found.push(node);
        else missing.push(name);
      }
      if (missing.length > 0) {
        throw new DispatcherError(
          `--nodes: no such node(s): ${missing.join(", ")}; check the names with kubectl get nodes`,
          2,
        );
      }
      return admitNodes(found, templateTolerations(this.template), Boolean(this.o.ignoreNodeTaints));
    }
    const wait = this.o.waitForNodesSecs ?? 0;
    const settle = this.o.nodeSettleSecs ?? 15;
    const pollMs = Math.max(0.01, this.o.pollIntervalSecs ?? 5) * 1000;
    const deadline = this.started + wait * 1000;
    let previous: string | undefined;
    let stableSince = Date.now();
    let announcedEmpty = false;
    for (;;) {
      const round = await this.selectionRound();
      const expired = Date.now() >= deadline;
      if (round.admitted.length > 0) {
        const names = round.admitted.map((n) => n.metadata?.name).join(",");
        const changed = names !== previous;
        if (changed) {
          previous = names;
          stableSince = Date.now();
        }
        const settled = wait === 0 || Date.now() - stableSince >= settle * 1000;
        if (expired || settled) return round;
        if (changed) {
          this.log.log(
            "info",
            `${round.admitted.length} eligible node(s) so far; waiting for the set to stay unchanged for ${settle}s`,
          );
        }
      } else {
        if (previous !== "") {
          previous = "";
          stableSince = Date.now();
        }
        if (expired) return round;
        if (!announcedEmpty) {
          announcedEmpty = true;
          this.log.log(
            "info",
            `nothing eligible yet for ${describeSelectors(this.o.nodeSelectors ?? [])}; re-checking for up to ${wait}s`,
          );
        }
      }
      if (this.stopping) return round;
      await sleep(pollMs, this.requestSignal);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Tracking: one list + watch of this owner's Jobs

  private ownerSelector(): string {
    return `${OWNER_LABEL}=${this.owner}`;
  }

  private isStale(job: KubeJob): boolean {
    if (!this.ownerRef) return false;
    return !(job.metadata?.ownerReferences ?? []).some((r) => r.uid === this.ownerRef?.uid);
  }

  private cache(job: KubeJob): void {
    const name = job.metadata?.name as string;
    this.jobs.set(name, slimJob(job));
    this.cachedAt.set(name, ++this.cacheClock);
  }

  private uncache(name: string): void {
    this.jobs.delete(name);
    this.cachedAt.set(name, ++this.cacheClock);
  }

  private async relist(): Promise<void> {
    // Anything cached after this point (watch events, create responses) is newer than the list's snapshot.
    const snapshotAt = this.cacheClock;
    const seen = new Map<string, KubeJob>();
    let continueToken: string | undefined;
    let resourceVersion = "";
    for (;;) {
      const page = await this.call("list Jobs", (s) =>
        this.api.listJobs(
          this.namespace,
          { labelSelector: this.ownerSelector(), limit: 500, continueToken },
          s,
        ),
      );
      for (const job of page.items) if (job.metadata?.name) seen.set(job.metadata.name, job);
      resourceVersion = page.resourceVersion ?? resourceVersion;
      continueToken = page.continueToken;
      if (!continueToken) break;
    }
    this.resourceVersion = resourceVersion;
    const older = (name: string) => (this.cachedAt.get(name) ?? 0) <= snapshotAt;
    for (const [name, job] of [...this.jobs]) if (!seen.has(name) && older(name)) this.onJobGone(name, job);
    for (const [name, job] of seen) if (older(name)) this.onJob(job);
  }

  /** Resolves once the watch is connected (or has failed: then `fatal` may be set). */
  private startWatch(): Promise<void> {
    const generation = ++this.watchGeneration;
    let needRelist = false;
    const restart = (relist: boolean, err?: unknown) => {
      if (generation !== this.watchGeneration || this.closing) return;
      this.watchGeneration++;
      this.watch = undefined;
      if (err)
        this.log.log("warn", `Job watch ended (${describeError(err)}); ${relist ? "relisting" : "resuming"}`);
      this.spawn(async () => {
        await sleep(err ? 250 + Math.random() * 500 : 0, this.requestSignal).catch(() => undefined);
        if (this.closing) return;
        if (relist) await this.relist();
        if (!this.closing) await this.startWatch();
      });
    };
    return this.api
      .watchJobs(
        this.namespace,
        { labelSelector: this.ownerSelector(), resourceVersion: this.resourceVersion },
        (type, object) => {
          if (generation !== this.watchGeneration) return;
          if (type === "ERROR") {
            needRelist = true;
            this.log.log(
              "info",
              `Job watch: ${object.code ?? ""} ${object.reason ?? ""} ${object.message ?? ""}`.trim(),
            );
            return;
          }
          const rv = object.metadata && (object.metadata as { resourceVersion?: string }).resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (type === "BOOKMARK") return;
          if (type === "DELETED") this.onJobGone(object.metadata?.name ?? "", object);
          else this.onJob(object);
          this.wake();
        },
        (err) => {
          const code = (err as { statusCode?: number } | undefined)?.statusCode;
          if (code === 401 || code === 403) {
            const hint = forbiddenHint({ code, body: "" }, "watch", "jobs.batch", this.namespace) as string;
            this.setFatal(new DispatcherError(hint, this.createdAny ? 1 : 2));
            return;
          }
          // client-node ends a watch that was quiet for 30 s with a TimeoutError: resume from the last
          // resourceVersion. A broken stream or a 410 means events may be lost: relist first.
          const quiet = (err as { name?: string } | undefined)?.name === "TimeoutError";
          restart(
            needRelist || code === 410 || (Boolean(err) && !quiet),
            err && code !== undefined ? `HTTP ${code}` : quiet ? undefined : err,
          );
        },
      )
      .then((handle) => {
        if (generation === this.watchGeneration && !this.closing) this.watch = handle;
        else handle.stop();
      })
      .catch((err) => restart(true, err));
  }

  /** A Job of this owner was added or changed. */
  private onJob(job: KubeJob): void {
    const name = job.metadata?.name;
    if (!name) return;
    this.cache(job);
    const node = jobNodeName(job);
    const outcome = jobOutcome(job);
    const state = node ? this.fanout.state(node) : undefined;
    const ours = !this.isStale(job);
    if (ours && node && state?.kind === "active" && state.job === name) {
      if (outcome.terminal) this.finishFromJob(node, job);
      else if (outcome.phase === "failed") this.readFailureEarly(node, job);
    } else if (ours && node && state?.kind === "queued") {
      // A Job of this same run (an earlier incarnation of this dispatcher created it): adopt, never recreate.
      this.fanout.adopt(node, name);
      this.trackedSince.set(name, Date.now());
      this.log.log("info", `node ${node}: adopted Job ${name} of this run`);
      if (outcome.terminal) this.finishFromJob(node, job);
    } else if (!(ours && node && state?.kind === "dispatching" && name === jobName(this.owner, node))) {
      // Not a Job any node of ours is waiting for: it still holds a slot while active.
      this.fanout.setForeignActive(name, !outcome.terminal);
    }
    this.reportProgress();
  }

  /** A Job of this owner disappeared (DELETED event, or missing from a relist). */
  private onJobGone(name: string, last: KubeJob): void {
    const cached = this.jobs.get(name);
    // A newer Job of the same name (the replacement of an earlier run's Job) is already known: not this one's business.
    if (cached && last.metadata?.uid && cached.metadata?.uid && cached.metadata.uid !== last.metadata.uid)
      return;
    this.uncache(name);
    this.fanout.setForeignActive(name, false);
    if (last.metadata?.uid && this.deletedByUs.has(last.metadata.uid)) return;
    const node = jobNodeName(last);
    const state = node ? this.fanout.state(node) : undefined;
    if (!node || state?.kind !== "active" || state.job !== name) return;
    if (jobOutcome(last).phase !== "running") {
      this.finishFromJob(node, last);
      return;
    }
    this.finishNode(node, {
      node,
      outcome: "failed",
      job: name,
      attempts: (last.status?.succeeded ?? 0) + (last.status?.failed ?? 0),
      startedAt: last.status?.startTime as string | undefined,
      finishedAt: isoNow(),
      reason: "JobDeleted",
      message: `Job ${name} was deleted before it finished (by a user, its TTL or garbage collection); its outcome is unknown`,
    });
  }

  private finishNode(node: string, result: NodeResult): void {
    const state = this.fanout.state(node);
    if (!state || state.kind === "done") return;
    this.fanout.finish(node, result);
    if (state.kind === "active") this.trackedSince.delete(state.job);
    this.stuck.delete(node);
    const level = result.outcome === "failed" ? "warn" : "info";
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
  private finishFromJob(node: string, job: KubeJob): void {
    const result = nodeResultFromJob(job);
    if (!result) return;
    result.node = node;
    this.finishNode(node, result);
    const uid = job.metadata?.uid ?? "";
    const early = this.failureReads.get(uid);
    if (result.outcome === "failed" && (early || this.podsReadable)) {
      this.spawn(async () => {
        // Prefer what the pods said at FailureTarget; read again only if that found nothing.
        const detail = (await early) ?? (await this.failureDetail(job, node));
        if (detail) result.message = `${detail}${result.reason ? ` [${result.reason}]` : ""}`;
      });
    }
  }

  /**
   * FailureTarget is set while the failed pods still exist (the terminal Failed waits for them to go, and a short
   * TTL may remove the Job right after): read why now, so the result can say it.
   */
  private readFailureEarly(node: string, job: KubeJob): void {
    const uid = job.metadata?.uid;
    if (!uid || !this.podsReadable || this.failureReads.has(uid)) return;
    this.failureReads.set(uid, this.failureDetail(job, node));
  }

  private async failureDetail(job: KubeJob, node: string): Promise<string | undefined> {
    const pods = await this.podsOf(job, node);
    return pods ? describePodFailure(pods) : undefined;
  }

  /** The pods of one Job (by node and ownerReference); undefined when pods cannot be read (RBAC is optional). */
  private async podsOf(job: KubeJob, node: string): Promise<PodLike[] | undefined> {
    try {
      const pods = await this.call(`list pods of Job ${job.metadata?.name}`, (s) =>
        this.api.listPods(
          this.namespace,
          { labelSelector: this.ownerSelector(), fieldSelector: `spec.nodeName=${node}` },
          s,
        ),
      );
      const uid = job.metadata?.uid;
      return pods.filter((p) => {
        const refs = (p.metadata as { ownerReferences?: { uid: string }[] } | undefined)?.ownerReferences;
        return !uid || !refs || refs.length === 0 || refs.some((r) => r.uid === uid);
      });
    } catch (err) {
      const code = apiFailureOf(err).code;
      if (code === 403 || code === 401) {
        if (this.podsReadable) {
          this.log.log(
            "warn",
            `pods are not readable in ${this.namespace} (HTTP ${code}): failure reasons come from Job conditions only; grant the dispatcher pods [list] for container exit codes and messages`,
          );
        }
        this.podsReadable = false;
      } else if (!this.killed) {
        this.log.log("warn", `cannot read the pods of Job ${job.metadata?.name}: ${describeError(err)}`);
      }
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Stale Jobs of earlier runs

  private async deleteStaleJobs(): Promise<void> {
    if (!this.ownerRef) return;
    const stale = [...this.jobs.values()]
      .filter((j) => this.isStale(j))
      .map((j) => j.metadata?.name as string);
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
    const deadline = Date.now() + (this.o.staleDeleteTimeoutSecs ?? 120) * 1000;
    while (stale.some((n) => this.jobs.has(n))) {
      if (Date.now() >= deadline) {
        const left = stale.filter((n) => this.jobs.has(n));
        throw new DispatcherError(
          `${left.length} Job(s) of an earlier run are still being deleted after ${this.o.staleDeleteTimeoutSecs ?? 120}s (${left.slice(0, 5).join(", ")}${left.length > 5 ? ", ..." : ""}); ` +
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

  private skip(node: string, reason: string, message: string): void {
    this.finishNode(node, { node, outcome: "skipped", attempts: 0, reason, message });
  }

  /** A dispatch that throws (RBAC refusal, fatal API error) still ends its node, so the run can wind down. */
  private async dispatchOrFail(node: string): Promise<void> {
    try {
      await this.dispatch(node);
    } catch (err) {
      this.finishNode(node, {
        node,
        outcome: "failed",
        attempts: 0,
        reason: "DispatchFailed",
        message: describeError(err),
      });
      throw err;
    }
  }

  private async dispatch(node: string): Promise<void> {
    const selected = this.selected.get(node);
    let fresh: NodeLike | undefined;
    try {
      fresh = await this.readNode(
        node,
        this.o.nodes?.length ? undefined : this.o.nodeFieldSelector || undefined,
      );
    } catch (err) {
      const hint = forbiddenHint(err, "list", "nodes");
      if (hint) throw new DispatcherError(hint, this.createdAny ? 1 : 2);
      if (this.killed) return;
      this.finishNode(node, {
        node,
        outcome: "failed",
        attempts: 0,
        reason: "NodeUnreadable",
        message: `could not re-read the node before dispatch: ${describeError(err)}`,
      });
      return;
    }
    if (this.fanout.state(node)?.kind !== "dispatching") return;
    if (!fresh) {
      this.skip(
        node,
        "NodeGone",
        `node ${node} no longer exists${this.o.nodeFieldSelector && !this.o.nodes?.length ? " or no longer matches --node-field-selector" : ""}`,
      );
      return;
    }
    if (selected?.metadata?.uid && fresh.metadata?.uid !== selected.metadata.uid) {
      this.skip(
        node,
        "NodeReplaced",
        `node ${node} was replaced (uid ${selected.metadata.uid} → ${fresh.metadata?.uid}); it is left for the next run`,
      );
      return;
    }
    if (
      !this.o.nodes?.length &&
      this.selectors.length > 0 &&
      !this.selectors.some((s) => s.matches(fresh?.metadata?.labels))
    ) {
      this.skip(
        node,
        "NotSelected",
        `node ${node} no longer matches ${describeSelectors(this.o.nodeSelectors ?? [])}; it is left untouched`,
      );
      return;
    }
    if (!this.o.ignoreNodeTaints) {
      const taint = blockingTaint(fresh, templateTolerations(this.template));
      if (taint) {
        const s = skippedNode(node, taint);
        this.skip(
          node,
          "Tainted",
          `taint ${s.described} is not tolerated by the Job template; to admit the node add:\n${s.suggestion}`,
        );
        return;
      }
    }
    await this.createJob(node);
  }

  private async createJob(node: string): Promise<void> {
    const name = jobName(this.owner, node);
    const body = instantiateJob(this.template, {
      jobName: name,
      node,
      ownerValue: this.owner,
      namespace: this.namespace,
      owner: this.ownerRef,
    });
    for (let attempt = 1; ; attempt++) {
      if (this.killed) return;
      try {
        const created = await this.call(`create Job ${name}`, (s) =>
          this.api.createJob(this.namespace, body, s),
        );
        this.createdAny = true;
        this.tracked(node, name);
        this.remember(created);
        this.log.log("info", `node ${node}: created Job ${name}`, { node, job: name });
        const seen = this.jobs.get(name);
        if (seen && jobOutcome(seen).terminal) this.finishFromJob(node, seen);
        return;
      } catch (err) {
        if (this.killed) return;
        const failure = apiFailureOf(err);
        const hint = forbiddenHint(err, "create", "jobs.batch", this.namespace);
        if (hint) throw new DispatcherError(hint, this.createdAny ? 1 : 2);
        if (failure.code === 422 && !this.createdAny) {
          // The server refuses the Job the template produces: every node would fail the same way.
          throw new DispatcherError(
            `the API server rejected the Job built from ${this.o.jobTemplate} for node ${node}: ${failure.message}; fix the template`,
            2,
          );
        }
        if (failure.code !== 409) {
          this.finishNode(node, {
            node,
            outcome: "failed",
            job: name,
            attempts: 0,
            reason: "CreateFailed",
            message: describeError(err),
          });
          return;
        }
        const verdict = await this.resolveConflict(node, name);
        if (verdict === "done") return;
        if (attempt >= RECREATE_ATTEMPTS) {
          this.finishNode(node, {
            node,
            outcome: "failed",
            job: name,
            attempts: 0,
            reason: "CreateFailed",
            message: `Job ${name} of an earlier run was still being deleted after ${(RECREATE_ATTEMPTS * RECREATE_INTERVAL_MS) / 1000}s`,
          });
          return;
        }
        await sleep(RECREATE_INTERVAL_MS, this.requestSignal).catch(() => undefined);
      }
    }
  }

  /** Cache a Job read outside the watch, unless the watch already holds this same Job (it is at least as recent). */
  private remember(job: KubeJob): void {
    const name = job.metadata?.name;
    if (!name) return;
    const cached = this.jobs.get(name);
    if (!cached || cached.metadata?.uid !== job.metadata?.uid) this.cache(job);
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
      if (apiFailureOf(err).code === 404) return "retry";
      this.finishNode(node, {
        node,
        outcome: "failed",
        job: name,
        attempts: 0,
        reason: "CreateFailed",
        message: `Job ${name} exists but cannot be read: ${describeError(err)}`,
      });
      return "done";
    }
    if (existing.metadata?.labels?.[OWNER_LABEL] !== this.owner) {
      this.finishNode(node, {
        node,
        outcome: "failed",
        job: name,
        attempts: 0,
        reason: "NameTaken",
        message: `a Job named ${name} exists but is not this release's (its ${OWNER_LABEL} label is ${JSON.stringify(existing.metadata?.labels?.[OWNER_LABEL] ?? null)}); delete it or choose another --name-prefix`,
      });
      return "done";
    }
    if (!this.isStale(existing)) {
      if (existing.metadata?.deletionTimestamp) return "retry";
      this.tracked(node, name);
      this.remember(existing);
      this.log.log("info", `node ${node}: adopted existing Job ${name} of this run`);
      const latest = this.jobs.get(name) ?? existing;
      if (jobOutcome(latest).terminal) this.finishFromJob(node, latest);
      return "done";
    }
    if (existing.metadata?.uid) this.deletedByUs.add(existing.metadata.uid);
    try {
      if (!existing.metadata?.deletionTimestamp) {
        this.log.log("info", `node ${node}: replacing Job ${name} left by an earlier run`);
        await this.call(`delete Job ${name}`, (s) => this.api.deleteJob(this.namespace, name, s));
      }
    } catch (err) {
      if (apiFailureOf(err).code !== 404) {
        this.finishNode(node, {
          node,
          outcome: "failed",
          job: name,
          attempts: 0,
          reason: "CreateFailed",
          message: `cannot delete Job ${name} of an earlier run: ${describeError(err)}`,
        });
        return "done";
      }
    }
    return "retry";
  }

  // ---------------------------------------------------------------------------------------------------
  // Stuck pods

  private async checkStuck(): Promise<void> {
    const graceMs = (this.o.stuckAfterSecs ?? 120) * 1000;
    const now = Date.now();
    const candidates = [...this.fanout.activeJobs()].filter(
      ([job]) => now - (this.trackedSince.get(job) ?? now) >= graceMs,
    );
    if (candidates.length === 0 || !this.podsReadable) return;
    let pods: PodLike[];
    try {
      pods = await this.call("list pods", (s) =>
        this.api.listPods(this.namespace, { labelSelector: this.ownerSelector() }, s),
      );
    } catch (err) {
      const code = apiFailureOf(err).code;
      if (code === 403 || code === 401) {
        this.podsReadable = false;
        this.log.log(
          "warn",
          `pods are not readable in ${this.namespace} (HTTP ${code}): stuck Jobs cannot be detected early; grant the dispatcher pods [list]`,
        );
      }
      return;
    }
    for (const [job, node] of candidates) {
      const uid = this.jobs.get(job)?.metadata?.uid;
      const own = pods.filter((p) => {
        const meta = p.metadata as
          { ownerReferences?: { uid: string }[]; labels?: Record<string, string> } | undefined;
        return meta?.ownerReferences?.some((r) => r.uid === uid) ?? meta?.labels?.["job-name"] === job;
      });
      const why = describeStuckPod(own);
      if (!why) {
        this.stuck.delete(node);
        continue;
      }
      const previous = this.stuck.get(node);
      if (!previous || now - previous.reportedAt >= STUCK_REPEAT_MS) {
        this.log.log("warn", `node ${node}: Job ${job} is stuck: ${why}`, { node, job, reason: "Stuck" });
        this.stuck.set(node, { message: why, reportedAt: now });
      } else previous.message = why;
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
    const env = this.deps.env ?? process.env;
    this.namespace = resolveNamespace(this.o.namespace, env, this.deps.serviceAccountNamespaceFile);
    this.owner = computeOwnerValue(this.o.namePrefix ?? "");
    let timeoutTimer: NodeJS.Timeout | undefined;
    try {
      this.selectors = checkOptions(this.o);
      this.log.log("info", `kata-deploy dispatcher: namespace ${this.namespace}, owner ${this.owner}`);
      this.readTemplate();
      void this.api;
      if (this.o.timeoutSecs !== undefined && this.o.timeoutSecs > 0) {
        timeoutTimer = setTimeout(() => {
          this.timedOut = true;
          this.log.log("warn", `timeout: ${this.o.timeoutSecs}s elapsed; no further Jobs are created`);
          this.wake();
        }, this.o.timeoutSecs * 1000);
      }
      await this.resolveOwner().catch((err) => this.rethrowSetup(err, "get", "jobs.batch", this.namespace));
      const { admitted, skipped } = await this.resolveNodes().catch((err) =>
        this.rethrowSetup(err, "list", "nodes"),
      );
      for (const s of skipped) {
        this.log.log(
          "info",
          `skipping node ${s.node}: taint ${s.described} is not tolerated by the Job template (a DaemonSet would skip it too)`,
        );
        this.preResults.push({
          node: s.node,
          outcome: "skipped",
          attempts: 0,
          reason: "Tainted",
          message: `taint ${s.described} is not tolerated by the Job template; to admit the node add:\n${s.suggestion}`,
        });
      }
      if (admitted.length === 0) {
        const why = this.o.nodes?.length
          ? undefined
          : noEligibleNodesError(skipped, this.o.waitForNodesSecs ?? 0, this.o.nodeSelectors ?? []);
        if (why) throw new DispatcherError(why, this.timedOut ? 1 : 2);
        this.log.log("info", "nothing to do: no node selected");
      }
      for (const node of admitted) this.selected.set(node.metadata?.name as string, node);
      this.fanout = new FanOut([...this.selected.keys()], this.o.parallelism ?? 100);
      if (this.o.dryRun) return this.finish(admitted.map((n) => n.metadata?.name as string));
      if (admitted.length === 0) return this.finish();
      this.log.log(
        "info",
        `dispatching ${admitted.length} node(s), at most ${this.fanout.parallelism} at a time`,
      );

      await this.relist().catch((err) => this.rethrowSetup(err, "list", "jobs.batch", this.namespace));
      // The watch must be up before any slot opens: without it no Job could ever be seen finishing.
      await this.startWatch();
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

  private async loop(): Promise<void> {
    const pollMs = Math.max(0.05, this.o.pollIntervalSecs ?? 5) * 1000;
    const stuckEveryMs = Math.max(50, Math.min(pollMs, ((this.o.stuckAfterSecs ?? 120) * 1000) / 4));
    let lastStuckCheck = Date.now();
    for (;;) {
      if (this.killed) return;
      if (this.stopping) this.fanout.stop();
      for (const node of this.fanout.takeNext()) this.spawn(() => this.dispatchOrFail(node));
      if (this.fanout.isFinished()) return;
      // Stopping: wait only for dispatches under way (so their Job names are known), not for running Jobs.
      if (this.stopping && this.fanout.dispatchingCount() === 0) return;
      if (Date.now() - lastStuckCheck >= stuckEveryMs) {
        lastStuckCheck = Date.now();
        this.spawn(() => this.checkStuck());
      }
      await this.waitForWake(stuckEveryMs);
    }
  }

  private async finish(plan?: string[]): Promise<ResultsDocument> {
    this.closing = true;
    this.watchGeneration++;
    this.watch?.stop();
    // Background work (pod reads for failure reasons, dispatches being abandoned) ends within its retry budget.
    const deadline = Date.now() + (this.killed ? 2000 : 30_000);
    while (this.pending.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.pending]), sleep(100)]);
    }
    const interrupted = Boolean(this.deps.stopSignal?.aborted) || this.killed;
    // A dry run dispatched nothing on purpose: its queued nodes are the plan, not failures.
    for (const [node, state] of plan ? [] : this.fanout.unfinished()) {
      const job = state.kind === "active" ? state.job : undefined;
      const stuck = this.stuck.get(node);
      const reason = stuck
        ? "Stuck"
        : this.timedOut
          ? "Timeout"
          : interrupted
            ? "Interrupted"
            : job
              ? "Aborted"
              : "NotDispatched";
      const running = job ? `its Job ${job} was still running` : "no Job was created for it";
      const message = stuck
        ? `${stuck.message} (${running} when the run ended)`
        : this.timedOut
          ? `the run timed out after ${this.o.timeoutSecs}s; ${running}`
          : interrupted
            ? `the dispatcher was stopped; ${running}`
            : `${running}: ${this.fatal?.message ?? "the run ended early"}`;
      const known = job ? this.jobs.get(job) : undefined;
      this.fanout.finish(node, {
        node,
        outcome: "failed",
        job,
        attempts: known ? (known.status?.succeeded ?? 0) + (known.status?.failed ?? 0) : 0,
        startedAt: known?.status?.startTime as string | undefined,
        reason,
        message,
      });
    }
    const nodes = [...this.preResults, ...this.fanout.results()].sort((a, b) =>
      a.node < b.node ? -1 : a.node > b.node ? 1 : 0,
    );
    const counts: ResultsCounts = { total: nodes.length, targeted: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const r of nodes) {
      counts[r.outcome]++;
      if (r.outcome !== "skipped") counts.targeted++;
    }
    const exitCode: 0 | 1 | 2 = this.fatal
      ? this.fatal.exitCode
      : counts.failed > 0 || this.timedOut || interrupted
        ? 1
        : 0;
    const doc: ResultsDocument = {
      runId: this.ownerRef?.uid ?? randomUUID(),
      owner: this.owner,
      ownerJob: this.ownerRef ? { name: this.ownerRef.name, uid: this.ownerRef.uid } : undefined,
      namespace: this.namespace,
      startedAt: this.startedAt,
      finishedAt: isoNow(),
      exitCode,
      error: this.fatal?.message,
      dryRun: Boolean(this.o.dryRun),
      timedOut: this.timedOut,
      interrupted,
      plan: plan?.map((node) => ({ node, job: jobName(this.owner, node) })),
      nodes,
      counts,
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
      counts: { total: 0, targeted: 0, succeeded: 0, failed: 0, skipped: 0 },
    };
  }
  return run.run();
}

/** The human summary printed at the end of a run. */
export function summarize(doc: ResultsDocument): string {
  const lines: string[] = [];
  const c = doc.counts;
  if (doc.dryRun) {
    lines.push(
      `dry run: ${doc.plan?.length ?? 0} Job(s) would be created in namespace ${doc.namespace} (owner ${doc.owner})`,
    );
    for (const p of doc.plan ?? []) lines.push(`  ${p.node} -> ${p.job}`);
  } else {
    lines.push(
      `summary: ${c.succeeded} succeeded, ${c.failed} failed, ${c.skipped} skipped (of ${c.total} node(s); owner ${doc.owner}, namespace ${doc.namespace})`,
    );
  }
  for (const r of doc.nodes.filter((n) => n.outcome !== "succeeded")) {
    lines.push(
      `  ${r.outcome} ${r.node}${r.job ? ` (Job ${r.job})` : ""}: ${r.reason ?? ""}${r.message ? ` - ${r.message.split("\n")[0]}` : ""}`,
    );
  }
  if (c.failed > 0) {
    lines.push(
      `logs: kubectl logs -n ${doc.namespace} -l ${OWNER_LABEL}=${doc.owner} --all-containers --prefix`,
    );
  }
  if (doc.error) lines.push(`error: ${doc.error}`);
  return lines.join("\n");
}
