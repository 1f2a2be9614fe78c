// The waiter's I/O: list+watch caches of Jobs, pods, nodes and the DaemonSet, and the loops that drive a hook run to
// its end (rollout/aggregate.ts decides). Every loop is bounded by the run's deadline. Node built-ins only.
import type { JobLike, NodeRecord, PodLike } from "../kube/jobStatus";
import { describeStuckPod, jobOutcome, readNodeRecord } from "../kube/jobStatus";
import {
  type DsPodLike,
  type JobRunState,
  type NodeLike,
  type SelectedNode,
  type TrackedJob,
  dsPodTrouble,
  dispatcherStalled,
  dsRunState,
  jobRunState,
  podsByNode,
  progressLine,
  selectNodes,
} from "./aggregate";
import { selectionQueries } from "../kube/nodeSelection";
import { KubeApiError, type KubeClient, isForbidden, isNotFound } from "./kubeClient";
import type { DaemonSetTarget, DispatcherStage, KubeObject, NodeResult } from "./types";

import { JOB_OWNER_LABEL as OWNER_LABEL } from "../kube/jobStatus";
export { OWNER_LABEL };
/** Annotation on a dispatcher Job: the run key it was created for (a cancelled run's Job is adopted by the next). */
export const RUN_KEY_ANNOTATION = "kata-deploy.pulumi.com/run-key";
export const JOB_NAME_LABEL = "batch.kubernetes.io/job-name";

export function jobsPath(ns: string, name?: string): string {
  return `/apis/batch/v1/namespaces/${encodeURIComponent(ns)}/jobs${name ? `/${encodeURIComponent(name)}` : ""}`;
}
export function podsPath(ns: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`;
}
export function daemonSetsPath(ns: string, name?: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/daemonsets${name ? `/${encodeURIComponent(name)}` : ""}`;
}
export const NODES_PATH = "/api/v1/nodes";

export interface Logger {
  (line: string): void;
}

/** Progress and diagnostics go to stderr, which the Pulumi engine shows for dynamic providers. */
export function stderrLogger(prefix: string): Logger {
  return (line: string) => {
    if (process.env.KATA_ROLLOUT_LOG === "quiet") return;
    process.stderr.write(`[${prefix}] ${line}\n`);
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

type Obj = { metadata?: { name?: string; resourceVersion?: string; uid?: string } };

/** The version a watch may no longer resume from (410 Gone/Expired, as a response or an ERROR event). */
function isGone(err: unknown): boolean {
  return (
    err instanceof KubeApiError && (err.code === 410 || err.reason === "Expired" || err.reason === "Gone")
  );
}

/**
 * A level-triggered cache of one collection: LIST, then WATCH from the list's resourceVersion. A closed or broken
 * stream (real API servers close watches routinely) resumes from the last version seen, so the server replays every
 * event in between; only a 410 — that version is gone from its history — relists, and then events may have been
 * lost (`eventsLost`). Objects that disappear are kept with `deleted` set, so a Job removed by its TTL still tells
 * how it ended.
 */
export class Reflector<T extends Obj> {
  readonly items: Map<string, T>;
  readonly deleted: Map<string, T>;
  synced: boolean;
  /** A relist after the first one happened: objects created and removed in the gap were never seen. */
  eventsLost: boolean;
  lastError?: unknown;
  /** Increments on every change; callers compare to know whether to recompute. */
  version: number;

  constructor(
    private readonly client: KubeClient,
    private readonly path: string,
    private readonly query: { labelSelector?: string; fieldSelector?: string },
  ) {
    // No field initializers: the closure serializer drops them (see KubeClient).
    this.items = new Map();
    this.deleted = new Map();
    this.synced = false;
    this.eventsLost = false;
    this.version = 0;
  }

  private upsert(obj: T): void {
    const name = obj.metadata?.name;
    if (!name) return;
    this.items.set(name, obj);
    this.deleted.delete(name);
    this.version++;
  }

  private remove(obj: T): void {
    const name = obj.metadata?.name;
    if (!name) return;
    const last = this.items.get(name) ?? obj;
    // The DELETED event carries the object's final state; keep whichever says more (a later status).
    this.deleted.set(name, obj.metadata?.resourceVersion ? obj : last);
    this.items.delete(name);
    this.version++;
  }

  async relist(): Promise<string> {
    const list = await this.client.list<T>(this.path, this.query);
    const names = new Set<string>();
    for (const item of list.items) {
      names.add(item.metadata?.name ?? "");
      this.upsert(item);
    }
    for (const [name, obj] of [...this.items]) if (!names.has(name)) this.remove(obj);
    this.synced = true;
    return list.resourceVersion;
  }

  /** Runs until `signal` aborts or the deadline passes. Never throws: errors are kept in `lastError` and retried. */
  async run(deadline: number, signal: AbortSignal): Promise<void> {
    let rv = "";
    let failures = 0;
    while (!signal.aborted && Date.now() < deadline) {
      try {
        if (!rv) {
          if (this.synced) this.eventsLost = true;
          rv = await this.relist();
        }
        const remaining = Math.max(1, Math.floor((deadline - Date.now()) / 1000));
        rv = await this.client.watch<T>(
          this.path,
          { ...this.query, resourceVersion: rv, timeoutSeconds: Math.min(300, remaining) },
          (event) => {
            // A stream that delivered events was a working connection: if it breaks, the server is not failing,
            // so the backoff starts over (otherwise routine resets stack up to 5 s of waiting each).
            failures = 0;
            // Kept as each event arrives: a stream that breaks mid-way resumes right after the last event handled.
            rv = event.object?.metadata?.resourceVersion ?? rv;
            if (event.type === "DELETED") this.remove(event.object);
            else this.upsert(event.object);
          },
          signal,
        );
        failures = 0;
      } catch (err) {
        this.lastError = err;
        if (isGone(err)) rv = "";
        failures++;
        if (err instanceof KubeApiError && (err.code === 401 || err.code === 403) && !this.synced) throw err;
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)), signal);
      }
    }
  }

  all(): { obj: T; deleted: boolean }[] {
    return [
      ...[...this.items.values()].map((obj) => ({ obj, deleted: false })),
      ...[...this.deleted.values()].map((obj) => ({ obj, deleted: true })),
    ];
  }
}

/** Delete objects (one name or a label selector) and wait until they are gone; bounded by `deadline`. */
export async function deleteAndWaitGone(
  client: KubeClient,
  collectionPath: string,
  target: { name?: string; labelSelector?: string },
  deadline: number,
  what: string,
  propagationPolicy: "Background" | "Foreground" = "Background",
): Promise<number> {
  const names = target.name
    ? [target.name]
    : (await client.list<Obj>(collectionPath, { labelSelector: target.labelSelector })).items.map(
        (i) => i.metadata?.name ?? "",
      );
  let deleted = 0;
  const queue = names.filter(Boolean);
  // A few deletes in flight at once: thousands of leftover Jobs must not take thousands of round trips in series.
  await Promise.all(
    Array.from({ length: Math.min(16, queue.length) }, async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
        if (
          await client.delete(
            `${collectionPath}/${encodeURIComponent(n)}`,
            propagationPolicy,
            `delete ${what} ${n}`,
          )
        ) {
          deleted++;
        }
      }
    }),
  );
  await waitGone(client, collectionPath, target, deadline, what);
  return deleted;
}

/** Poll until nothing matches (a name or a selector). */
export async function waitGone(
  client: KubeClient,
  collectionPath: string,
  target: { name?: string; labelSelector?: string },
  deadline: number,
  what: string,
): Promise<void> {
  for (let i = 0; ; i++) {
    const left = target.name
      ? (await client.getOptional<Obj>(`${collectionPath}/${encodeURIComponent(target.name)}`)) !== undefined
        ? 1
        : 0
      : (await client.list<Obj>(collectionPath, { labelSelector: target.labelSelector })).items.length;
    if (left === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `${what}: ${left} object(s) still present after waiting; they must be gone before the rollout can go on`,
      );
    }
    await sleep(Math.min(2_000, 100 * 2 ** Math.min(i, 5)));
  }
}

/** Marks a pod read that failed for a passing reason (timeout, 5xx), to be made again. */
const READ_AGAIN = Symbol("read again");

/** Pods of one Job (by the label the Job controller puts on them); undefined when pods may not be read. */
export async function podsOfJob(client: KubeClient, ns: string, job: string): Promise<PodLike[] | undefined> {
  try {
    return (await client.list<PodLike>(podsPath(ns), { labelSelector: `${JOB_NAME_LABEL}=${job}` })).items;
  } catch (err) {
    if (isForbidden(err)) return undefined;
    throw err;
  }
}

export interface StageRunResult {
  results: NodeResult[];
  timedOut: boolean;
  dispatcherFailure?: string;
  dispatcherUid?: string;
  startedAt: number;
  finishedAt: number;
}

/** What every wait loop needs: where, until when, how to report. */
interface WaitOptions {
  client: KubeClient;
  namespace: string;
  deadline: number;
  timeoutSeconds: number;
  stuckGraceSeconds: number;
  log: Logger;
  label: string;
  /** Milliseconds between progress lines (at most). */
  progressEveryMs?: number;
  /** Aborted by the provider's Cancel: the wait stops at once with RolloutCancelledError; the cluster is left as is. */
  signal?: AbortSignal;
}

/** A wait stopped by Cancel. What runs in the cluster keeps running; the next create/update adopts it. */
export class RolloutCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RolloutCancelledError";
  }
}

/** Stops `controller` when the caller's `signal` aborts; returns the listener's removal. */
function linkAbort(signal: AbortSignal | undefined, controller: AbortController): () => void {
  if (!signal) return () => {};
  const stop = () => controller.abort();
  if (signal.aborted) stop();
  signal.addEventListener("abort", stop);
  return () => signal.removeEventListener("abort", stop);
}

export interface StageRunOptions extends WaitOptions {
  stage: DispatcherStage;
  /** The dispatcher Job to create (the stage's Job, possibly with a narrowed node selection). */
  job: KubeObject;
  /** This run's key: a running dispatcher Job annotated with the same key is adopted, not replaced. */
  runKey?: string;
}

/** A dispatcher Job that a new run of `runKey` follows instead of replacing: same key, still running. */
export function adoptable(job: KubeObject | undefined, runKey: string | undefined): boolean {
  if (!job || !runKey || job.metadata?.deletionTimestamp) return false;
  if (job.metadata?.annotations?.[RUN_KEY_ANNOTATION] !== runKey) return false;
  return !jobOutcome(job as JobLike).terminal;
}

/**
 * One hook run in job mode (Helm's before-hook-creation, then the hook): remove an earlier dispatcher Job of the
 * same name and the per-node Jobs of its owner, create the dispatcher Job, then follow it and every per-node Job
 * of its owner until all are terminal or the deadline passes.
 */
export async function runDispatcherStage(o: StageRunOptions): Promise<StageRunResult> {
  const { client, namespace: ns, stage, log } = o;
  const startedAt = Date.now();
  const name = o.job.metadata?.name ?? "";
  const ownerSelector = `${OWNER_LABEL}=${stage.ownerValue}`;
  let dispatcherUid: string | undefined;
  const running = await client.getOptional<KubeObject>(jobsPath(ns, name));
  if (adoptable(running, o.runKey)) {
    // A run of the same key was cancelled while its dispatcher went on: follow it and the Jobs it made, so no
    // node gets a second Job.
    dispatcherUid = running?.metadata?.uid;
    log(
      `${o.label}: adopting the running dispatcher Job ${ns}/${name} of the same run key; following ${ownerSelector}`,
    );
  } else {
    // before-hook-creation: the old hook Job goes first; its per-node Jobs too, so no old result is mistaken for new.
    const removedDispatcher = await deleteAndWaitGone(
      client,
      jobsPath(ns),
      { name },
      o.deadline,
      `earlier dispatcher Job`,
      "Background",
    );
    const removedJobs = await deleteAndWaitGone(
      client,
      jobsPath(ns),
      { labelSelector: ownerSelector },
      o.deadline,
      `earlier per-node Jobs (${ownerSelector})`,
      "Foreground",
    );
    if (removedDispatcher || removedJobs) {
      log(
        `${o.label}: removed the previous dispatcher Job and ${removedJobs} per-node Job(s) of ${stage.ownerValue}`,
      );
    }
    const manifest = { ...o.job, metadata: { ...o.job.metadata, namespace: ns } };
    const created = await client.create<KubeObject>(jobsPath(ns), manifest, `create dispatcher Job ${name}`);
    dispatcherUid = created.metadata?.uid;
    log(
      `${o.label}: created dispatcher Job ${ns}/${name}; following per-node Jobs labelled ${ownerSelector}`,
    );
  }

  const abort = new AbortController();
  const unlink = linkAbort(o.signal, abort);
  const jobs = new Reflector<JobLike & Obj>(client, jobsPath(ns), { labelSelector: ownerSelector });
  const dispatcher = new Reflector<JobLike & Obj>(client, jobsPath(ns), {
    fieldSelector: `metadata.name=${name}`,
  });
  const loops = [jobs.run(o.deadline, abort.signal), dispatcher.run(o.deadline, abort.signal)].map((p) =>
    p.catch((err: unknown) => {
      abort.abort();
      throw err;
    }),
  );
  const pods = new Map<string, PodLike[] | undefined>();
  const stuck = new Map<string, { since: number; reason: string }>();
  let podsReadable = true;
  let selected: SelectedNode[] | undefined;
  let nodeRecords: Map<string, NodeRecord> | undefined;
  let lastProgress = 0;
  let lastStuckScan = 0;
  const stuckScanEveryMs = Math.min(15_000, Math.max(250, (o.stuckGraceSeconds * 1000) / 4));
  let dispatcherStall: { since: number; reason: string } | undefined;
  let state: JobRunState | undefined;
  let dispatcherTracked: TrackedJob | undefined;
  let loopError: unknown;
  Promise.all(loops).catch((err: unknown) => (loopError = err));
  try {
    for (;;) {
      if (loopError) throw loopError;
      if (o.signal?.aborted) {
        const c = state?.counts;
        throw new RolloutCancelledError(
          `${o.label}: cancelled after ${Math.round((Date.now() - startedAt) / 1000)}s` +
            (c ? ` with ${c.done}/${c.total} nodes done and ${c.running} running` : "") +
            `; dispatcher Job ${ns}/${name} and its per-node Jobs keep running in the cluster, and the next ` +
            "`pulumi up` follows them instead of starting over",
        );
      }
      const now = Date.now();
      const timedOut = now >= o.deadline;
      // Pods of failed Jobs are read as soon as the failure shows, before a TTL can take them.
      if (podsReadable) {
        const failedWithoutPods = jobs
          .all()
          .filter(({ obj }) => jobOutcome(obj).phase === "failed" && !pods.has(obj.metadata?.name ?? ""))
          .slice(0, 32);
        await Promise.all(
          failedWithoutPods.map(async ({ obj }) => {
            const job = obj.metadata?.name ?? "";
            const list = await podsOfJob(client, ns, job).catch((): typeof READ_AGAIN => READ_AGAIN);
            // A transient failure (the client already retried it) is read again on the next pass; only a refusal
            // (403) stops reading pods for good.
            if (list === READ_AGAIN) return;
            if (list === undefined) podsReadable = false;
            pods.set(job, list);
          }),
        );
      }
      // A periodic scan of the pods of this owner and of the dispatcher finds pods that cannot start or whose node
      // stopped reporting: at most one pair of LISTs per 15 s, often enough to name a stall within the grace period.
      if (podsReadable && now - lastStuckScan >= stuckScanEveryMs) {
        lastStuckScan = now;
        try {
          const pending = (
            await client.list<PodLike & { metadata?: { labels?: Record<string, string> } }>(podsPath(ns), {
              labelSelector: ownerSelector,
            })
          ).items;
          const byJob = new Map<string, PodLike[]>();
          for (const p of pending) {
            const job = p.metadata?.labels?.[JOB_NAME_LABEL] ?? p.metadata?.labels?.["job-name"];
            if (job) byJob.set(job, [...(byJob.get(job) ?? []), p]);
          }
          for (const [job, list] of byJob) {
            const why = describeStuckPod(list);
            if (why) stuck.set(job, { since: stuck.get(job)?.since ?? now, reason: why });
            else stuck.delete(job);
          }
          const own = await client.list<PodLike>(podsPath(ns), {
            labelSelector: `${JOB_NAME_LABEL}=${name}`,
          });
          const why = describeStuckPod(own.items);
          dispatcherStall = why ? { since: dispatcherStall?.since ?? now, reason: why } : undefined;
        } catch (err) {
          if (isForbidden(err)) podsReadable = false;
        }
      }
      const tracked: TrackedJob[] = jobs.all().map(({ obj, deleted }) => {
        const n = obj.metadata?.name ?? "";
        const s = stuck.get(n);
        return { job: obj, deleted, pods: pods.get(n), stuckSince: s?.since, stuckReason: s?.reason };
      });
      const d = dispatcher.all()[0];
      dispatcherTracked = d ? { job: d.obj, deleted: d.deleted, pods: pods.get(name) } : undefined;
      if (dispatcherTracked && jobOutcome(dispatcherTracked.job).phase === "failed" && !pods.has(name)) {
        pods.set(name, podsReadable ? await podsOfJob(client, ns, name).catch(() => undefined) : undefined);
        dispatcherTracked.pods = pods.get(name);
      }
      const dispatcherDone =
        (!!dispatcherTracked &&
          (jobOutcome(dispatcherTracked.job).terminal || !!dispatcherTracked.deleted)) ||
        dispatcherStalled({ dispatcherStall, now, stuckGraceSeconds: o.stuckGraceSeconds });
      // The selection is read once the dispatcher has listed nodes, so nodes it left out can be named; the same
      // Node objects carry the outcomes the dispatcher recorded (it records them before it exits).
      if ((dispatcherDone || timedOut) && selected === undefined) {
        const lists = await listSelection(client, stage).catch(() => undefined);
        selected = lists ? selectNodes(lists, stage.selection, stage.tolerations) : [];
        nodeRecords = recordsOf(lists ?? []);
      }
      state = jobRunState({
        jobs: tracked,
        dispatcher: dispatcherTracked,
        selected,
        timedOut,
        timeoutSeconds: o.timeoutSeconds,
        now,
        stuckGraceSeconds: o.stuckGraceSeconds,
        nodeRecords,
        namespace: ns,
        ownerValue: stage.ownerValue,
        jobEventsLost: jobs.eventsLost,
        dispatcherStall,
      });
      if (now - lastProgress >= (o.progressEveryMs ?? 10_000)) {
        lastProgress = now;
        log(
          progressLine(
            o.label,
            state.counts,
            (now - startedAt) / 1000,
            `dispatcher ${state.dispatcherPhase}`,
          ),
        );
      }
      // Failure reasons come from the pods: a run is not over while a failed Job's pods are still to be read.
      const podsOutstanding =
        podsReadable &&
        jobs
          .all()
          .some(({ obj }) => jobOutcome(obj).phase === "failed" && !pods.has(obj.metadata?.name ?? ""));
      if (state.done && (dispatcherDone || timedOut) && (timedOut || !podsOutstanding)) break;
      await sleep(250, abort.signal);
    }
  } finally {
    unlink();
    abort.abort();
    await Promise.allSettled(loops);
  }
  if (state.dispatcherPhase === "stalled") {
    // A dispatcher that starts later would install outside any `pulumi up`, with nobody reporting: remove it.
    await client
      .delete(jobsPath(ns, name), "Background", `delete stalled dispatcher Job ${name}`)
      .catch(() => false);
    log(`${o.label}: removed dispatcher Job ${ns}/${name}, which could not start`);
  }
  return {
    results: state.results,
    timedOut: state.results.some((r) => r.reason === "Timeout"),
    dispatcherFailure: state.dispatcherFailure,
    dispatcherUid,
    startedAt,
    finishedAt: Date.now(),
  };
}

export interface DaemonSetWaitOptions extends WaitOptions {
  target: DaemonSetTarget;
}

/** Daemonset mode: wait for the DaemonSet's pod on every eligible node to be Ready (or stuck, or the deadline). */
export async function waitDaemonSet(o: DaemonSetWaitOptions): Promise<StageRunResult> {
  const { client, namespace: ns, target, log } = o;
  const startedAt = Date.now();
  const selector = Object.entries(target.podSelector)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const abort = new AbortController();
  const unlink = linkAbort(o.signal, abort);
  const nodes = new Reflector<NodeLike & Obj>(client, NODES_PATH, {});
  const pods = new Reflector<DsPodLike & Obj>(client, podsPath(ns), { labelSelector: selector });
  const ds = new Reflector<KubeObject & Obj>(client, daemonSetsPath(ns), {
    fieldSelector: `metadata.name=${target.name}`,
  });
  let loopError: unknown;
  const loops = [nodes, pods, ds].map((r) =>
    r.run(o.deadline, abort.signal).catch((err: unknown) => {
      loopError = err;
      abort.abort();
    }),
  );
  const stuckSince = new Map<string, number>();
  let lastProgress = 0;
  let state: ReturnType<typeof dsRunState> | undefined;
  try {
    for (;;) {
      if (loopError) throw loopError;
      if (o.signal?.aborted) {
        throw new RolloutCancelledError(
          `${o.label}: cancelled after ${Math.round((Date.now() - startedAt) / 1000)}s; the DaemonSet keeps rolling out and the next \`pulumi up\` waits for it again`,
        );
      }
      const now = Date.now();
      const timedOut = now >= o.deadline;
      if (nodes.synced && pods.synced && ds.synced) {
        const dsObj = ds.items.get(target.name);
        const meta = dsObj?.metadata as { generation?: number } | undefined;
        const status = dsObj?.status as { observedGeneration?: number } | undefined;
        const dsObserved =
          !!dsObj && (meta?.generation === undefined || (status?.observedGeneration ?? 0) >= meta.generation);
        const current = podsByNode([...pods.items.values()]);
        for (const [node, pod] of current) {
          // A crash loop runs between its back-offs: the clock keeps going while the pod restarts without ever
          // becoming Ready, so it does not restart with each restart.
          if (dsPodTrouble(pod) || (restartCount(pod) > 0 && !podIsReady(pod)))
            stuckSince.set(node, stuckSince.get(node) ?? now);
          else stuckSince.delete(node);
        }
        state = dsRunState({
          nodes: [...nodes.items.values()],
          pods: [...pods.items.values()],
          nodeSelector: target.nodeSelector,
          tolerations: target.tolerations,
          dsObserved,
          dsName: target.name,
          timedOut,
          timeoutSeconds: o.timeoutSeconds,
          now,
          startedAt,
          stuckSince,
          stuckGraceSeconds: o.stuckGraceSeconds,
        });
        if (now - lastProgress >= (o.progressEveryMs ?? 10_000)) {
          lastProgress = now;
          log(
            progressLine(
              o.label,
              state.counts,
              (now - startedAt) / 1000,
              dsObj ? undefined : `DaemonSet ${target.name} not found yet`,
            ),
          );
        }
        if (state.done) break;
      } else if (timedOut) {
        throw new Error(
          `${o.label}: could not list nodes, pods and DaemonSet ${target.name} before the timeout`,
        );
      }
      await sleep(250, abort.signal);
    }
  } finally {
    unlink();
    abort.abort();
    await Promise.allSettled(loops);
  }
  return {
    results: state.results,
    timedOut: state.results.some((r) => r.reason === "Timeout"),
    startedAt,
    finishedAt: Date.now(),
  };
}

function restartCount(pod: DsPodLike): number {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].reduce(
    (sum, c) => sum + (c.restartCount ?? 0),
    0,
  );
}

function podIsReady(pod: DsPodLike): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
}

/** The outcome records on the listed nodes, by node name. */
function recordsOf(lists: readonly (readonly NodeLike[])[]): Map<string, NodeRecord> {
  const out = new Map<string, NodeRecord>();
  for (const n of lists.flat()) {
    const record = readNodeRecord(n);
    if (record && n.metadata?.name) out.set(n.metadata.name, record);
  }
  return out;
}

/** Nodes as the API server selects them: one LIST per label selector (their union is the selection), or all nodes. */
export async function listSelection(client: KubeClient, stage: DispatcherStage): Promise<NodeLike[][]> {
  return Promise.all(
    selectionQueries(stage.selection).map(
      async (labelSelector) =>
        (await client.list<NodeLike>(NODES_PATH, labelSelector ? { labelSelector } : {}, "list nodes")).items,
    ),
  );
}

/** The selected nodes with no successful result: what a drift-healing run must cover. */
export async function nodesNeedingInstall(
  client: KubeClient,
  stage: DispatcherStage,
  succeeded: ReadonlySet<string>,
): Promise<SelectedNode[]> {
  return selectNodes(await listSelection(client, stage), stage.selection, stage.tolerations).filter(
    (n) => !n.blockedBy && !succeeded.has(n.name),
  );
}

export { isNotFound };
