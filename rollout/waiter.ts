// The waiter's I/O: list+watch caches of Jobs, pods, nodes and the DaemonSet, and the loops that drive a hook run to
// its end (rollout/aggregate.ts decides). Every loop is bounded by the run's deadline. Node built-ins only.
import type { JobLike, NodeRecord, PodLike } from "../kube/jobStatus";
import { describeStuckPod, jobOutcome, readNodeRecord } from "../kube/jobStatus";
import {
  type DsPodLike,
  type JobRunState,
  type JobRunView,
  dispatcherExitCode,
  nodesLeftUndispatched,
  openJobsAllStuck,
  runStalled,
  DISPATCHER_REPLACEMENT,
  replacementBackoffMs,
  shouldReplaceDispatcher,
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
/** Annotation on a dispatcher Job: the run that created it (see provider.ts newRunId). */
export const RUN_ID_ANNOTATION = "kata-deploy.pulumi.com/run-id";
export const JOB_NAME_LABEL = "batch.kubernetes.io/job-name";
/** Label the Job controller puts on a Job's pods: the Job's uid (a replacement of the same name has another). */
export const CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid";

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
  /** The highest resourceVersion (as an integer) the cache has caught up to. */
  progress: number;

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
    this.progress = 0;
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
          this.noteProgress(rv);
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
            this.noteProgress(rv);
            if (event.type === "DELETED") this.remove(event.object);
            else this.upsert(event.object);
          },
          signal,
          (bookmark) => {
            rv = bookmark;
            this.noteProgress(bookmark);
          },
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

  private noteProgress(rv: string): void {
    const n = Number(rv);
    if (Number.isSafeInteger(n) && n > this.progress) this.progress = n;
  }

  /**
   * Wait until this cache has seen every change up to `resourceVersion` (events or bookmarks bring it there), so a
   * decision made on it misses nothing that happened before. resourceVersions are compared as the integers etcd
   * gives; one that is not an integer, or a stream that does not get there by `untilMs`, returns false.
   */
  async caughtUp(resourceVersion: string, untilMs: number, signal: AbortSignal): Promise<boolean> {
    const target = Number(resourceVersion);
    if (!Number.isSafeInteger(target)) return false;
    while (this.progress < target) {
      if (Date.now() >= untilMs || signal.aborted) return false;
      await sleep(50, signal);
    }
    return true;
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
  /** What the run did beyond the plain hook: adopted or waited for another run, replaced a dead dispatcher. */
  notes?: string[];
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
  /**
   * The dispatcher Job that replaces one which died with nodes left, covering just those nodes (`--nodes`). Without
   * it a dead dispatcher ends the run.
   */
  replacementJob?: (nodes: readonly string[]) => KubeObject;
  /** The dispatcher runs with `--skip-installed-nodes` for this payload (aggregate.ts JobRunView.skipPayload). */
  skipPayload?: string;
}

/** A dispatcher Job that a new run of `runKey` follows instead of replacing: same key, still running. */
export function adoptable(job: KubeObject | undefined, runKey: string | undefined): boolean {
  if (!job || !runKey || job.metadata?.deletionTimestamp) return false;
  if (job.metadata?.annotations?.[RUN_KEY_ANNOTATION] !== runKey) return false;
  return !jobOutcome(job).terminal;
}

/** A dispatcher Job that runs for someone: not finished, not being deleted. */
function runningJob(job: KubeObject | undefined): boolean {
  return !!job && !job.metadata?.deletionTimestamp && !jobOutcome(job).terminal;
}

function runIdOf(job: KubeObject | undefined): string {
  return job?.metadata?.annotations?.[RUN_ID_ANNOTATION] ?? "unknown";
}

/**
 * How long a new run waits for per-node Jobs still running without a running dispatcher before it removes them: a
 * rollout replacing its dead dispatcher does so within its backoff (DISPATCHER_REPLACEMENT), well inside this.
 */
const ORPHAN_JOBS_GRACE_MS = 30_000;

function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.code === 409;
}

/**
 * Create a dispatcher Job. A create is not retried by the client on a 5xx or a broken connection (it may have been
 * applied), so here it is: the Job is read back, and one that carries this run's id and is not a Job of this run
 * already (`known`) is the one just created. Resolves to the Job, or "conflict" when another one holds the name.
 */
async function createDispatcherJob(
  o: StageRunOptions,
  manifest: KubeObject,
  known: ReadonlySet<string>,
  what: string,
): Promise<KubeObject | "conflict"> {
  const { client, namespace: ns } = o;
  const name = manifest.metadata?.name ?? "";
  const runId = manifest.metadata?.annotations?.[RUN_ID_ANNOTATION];
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.create<KubeObject>(jobsPath(ns), manifest, what);
    } catch (err) {
      if (isConflict(err)) {
        const current = await client.getOptional<KubeObject>(jobsPath(ns, name));
        const mine =
          !!runId &&
          current?.metadata?.annotations?.[RUN_ID_ANNOTATION] === runId &&
          !known.has(current.metadata?.uid ?? "");
        return mine && current ? current : "conflict";
      }
      const transient =
        !(err instanceof KubeApiError) || err.code === 429 || (err.code >= 500 && err.code < 600);
      if (!transient || attempt >= 6 || Date.now() >= o.deadline) throw err;
      await sleep(Math.min(5_000, 250 * 2 ** attempt), o.signal);
    }
  }
}

/**
 * Take this run's dispatcher Job: adopt a running one of the same run key; wait while one of another key runs (another
 * rollout of this release: its work is never deleted), and while per-node Jobs of the owner still run without one (a
 * rollout may be replacing its dispatcher); then Helm's before-hook-creation and create. A create that meets a Job
 * made meanwhile (409) starts over.
 */
async function claimDispatcher(
  o: StageRunOptions,
  notes: string[],
  beforeCreate: () => void,
): Promise<{ uid: string; createdAt?: string; adopted?: boolean }> {
  const { client, namespace: ns, stage, log } = o;
  const name = o.job.metadata?.name ?? "";
  const ownerSelector = `${OWNER_LABEL}=${stage.ownerValue}`;
  const waitStarted = Date.now();
  let waitedFor: string | undefined;
  let orphansSince: number | undefined;
  for (let round = 0; ; round++) {
    if (o.signal?.aborted)
      throw new RolloutCancelledError(`${o.label}: cancelled before its dispatcher started`);
    const existing = await client.getOptional<KubeObject>(jobsPath(ns, name));
    if (adoptable(existing, o.runKey)) {
      // Same run key (a cancelled run, or another rollout of the same release and inputs): follow it and the Jobs
      // it made, so no node gets a second Job.
      const note = `adopted the running dispatcher Job ${ns}/${name} of the same run key (run ${runIdOf(existing)})`;
      notes.push(note);
      log(`${o.label}: ${note}; following ${ownerSelector}`);
      return {
        uid: existing?.metadata?.uid ?? "",
        createdAt: existing?.metadata?.creationTimestamp,
        adopted: true,
      };
    }
    const running = runningJob(existing);
    const active = running
      ? 0
      : (await client.list<JobLike & Obj>(jobsPath(ns), { labelSelector: ownerSelector })).items.filter(
          (j) => !j.metadata?.deletionTimestamp && !jobOutcome(j).terminal,
        ).length;
    if (!running && active === 0) orphansSince = undefined;
    else if (!running) orphansSince ??= Date.now();
    const waitOrphans = !running && active > 0 && Date.now() - (orphansSince ?? 0) < ORPHAN_JOBS_GRACE_MS;
    if (running || waitOrphans) {
      const what = running
        ? `dispatcher Job ${ns}/${name} of another rollout (run ${runIdOf(existing)}) is running`
        : `${active} per-node Job(s) of another run are running without a dispatcher`;
      if (waitedFor !== what) {
        waitedFor = what;
        log(`${o.label}: ${what}; waiting for it to end instead of deleting its work`);
      }
      if (Date.now() >= o.deadline) {
        throw new Error(`${o.label}: ${what}; still waiting for it when the rollout timeout passed`);
      }
      await sleep(Math.min(2_000, 250 * 2 ** Math.min(round, 3)), o.signal);
      continue;
    }
    if (waitedFor) {
      notes.push(
        `waited ${Math.round((Date.now() - waitStarted) / 1000)}s for another run of this release to end (${waitedFor})`,
      );
    }
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
    beforeCreate();
    const created = await createDispatcherJob(o, manifest, new Set(), `create dispatcher Job ${name}`);
    // Another rollout created it between our delete and our create: look again (adopt it or wait for it).
    if (created === "conflict") continue;
    log(
      `${o.label}: created dispatcher Job ${ns}/${name}; following per-node Jobs labelled ${ownerSelector}`,
    );
    return {
      uid: created.metadata?.uid ?? "",
      createdAt: created.metadata?.creationTimestamp,
    };
  }
}

/** A per-node Job of this run: owned by one of its dispatcher Jobs, or by none (a replacement dispatcher's). */
function ownedByRun(job: { metadata?: object }, uids: ReadonlySet<string>): boolean {
  const meta = job.metadata as { ownerReferences?: readonly { kind?: string; uid?: string }[] } | undefined;
  const owners = (meta?.ownerReferences ?? []).filter((r) => r.kind === "Job");
  return owners.length === 0 || owners.some((r) => uids.has(r.uid ?? ""));
}

/** Wait until no pod of the dispatcher Job `name` is still running or terminating (pods unreadable: no wait). */
async function dispatcherPodsStopped(
  client: KubeClient,
  ns: string,
  name: string,
  untilMs: number,
  signal: AbortSignal,
): Promise<void> {
  while (Date.now() < untilMs && !signal.aborted) {
    // A failed read (a 5xx, a reset) says nothing about the pods: read again rather than hand nodes on early.
    const pods = await podsOfJob(client, ns, name).catch((): typeof READ_AGAIN => READ_AGAIN);
    if (pods === undefined) return;
    if (
      pods !== READ_AGAIN &&
      pods.every((p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed")
    )
      return;
    await sleep(200, signal);
  }
}

/**
 * The Orphan delete that keeps a dead dispatcher's per-node Jobs orphans its pods too: a failed pod (a crash, an OOM
 * kill) would stay in the namespace for good, since nothing owns it and PodGC only removes terminated pods beyond
 * thousands. Its failure was read already (the run's message says why it died), so its pods are deleted here, by the
 * uid label of the dead Job (the replacement, of the same name, has another uid). Without `pods delete` they are
 * left, and the log says how to remove them.
 */
async function removeOrphanedPods(o: StageRunOptions, deadUid: string | undefined): Promise<void> {
  if (!deadUid) return;
  const { client, namespace: ns } = o;
  const selector = `${CONTROLLER_UID_LABEL}=${deadUid}`;
  try {
    const pods = (await client.list<Obj>(podsPath(ns), { labelSelector: selector })).items;
    for (const p of pods) {
      const pod = p.metadata?.name ?? "";
      await client.delete(`${podsPath(ns)}/${encodeURIComponent(pod)}`, "Background", `delete pod ${pod}`);
    }
  } catch (err) {
    o.log(
      `${o.label}: left the pods of the replaced dispatcher Job (${isForbidden(err) ? "pods delete is not allowed" : String(err)}); ` +
        `remove them with: kubectl delete pods -n ${ns} -l ${selector}`,
    );
  }
}

/**
 * Replace a dispatcher that died with nodes left, after a backoff: remove the dead Job with Orphan propagation (its
 * per-node Jobs name it as owner and must survive it), then create the replacement for just the nodes left. The
 * replacement runs without `--owner-job-name`, so the per-node Jobs of its predecessor are not "an earlier run's" to
 * it: it counts the running ones against the parallelism and leaves them be. A Job of that name made meanwhile by
 * another rollout is adopted when it has this run key and left alone otherwise.
 */
async function replaceDispatcher(
  o: StageRunOptions,
  r: {
    attempt: number;
    nodesLeft: () => Promise<string[]>;
    ownUids: ReadonlySet<string>;
    why: string;
    signal: AbortSignal;
  },
): Promise<{ note: string; job?: KubeObject }> {
  const { client, namespace: ns, log } = o;
  const name = o.job.metadata?.name ?? "";
  const backoff = replacementBackoffMs(r.attempt);
  log(
    `${o.label}: ${r.why}; nodes have no Job yet. Replacing the dispatcher in ${backoff / 1000}s ` +
      `(attempt ${r.attempt} of ${DISPATCHER_REPLACEMENT.attempts}); the per-node Jobs it made stay and are followed`,
  );
  await sleep(backoff, r.signal);
  const nodes = await r.nodesLeft();
  if (nodes.length === 0) {
    return {
      note: `dispatcher Job ${name} died (${r.why}); every node it left has a Job, or may have had one unseen, so it was not replaced`,
    };
  }
  const replacement = o.replacementJob?.(nodes);
  if (!replacement) return { note: `dispatcher Job ${name} died and could not be replaced` };
  for (;;) {
    const current = await client.getOptional<KubeObject>(jobsPath(ns, name));
    if (current && !r.ownUids.has(current.metadata?.uid ?? "")) {
      if (adoptable(current, o.runKey)) {
        log(
          `${o.label}: another rollout of the same run key replaced the dispatcher first; following its Job`,
        );
        return {
          note: `adopted dispatcher Job ${ns}/${name} of the same run key after ours died`,
          job: current,
        };
      }
      return {
        note: `dispatcher Job ${name} died and another rollout's dispatcher (run ${runIdOf(current)}) took its name; not replaced`,
      };
    }
    if (current) {
      await client.delete(jobsPath(ns, name), "Orphan", `delete dead dispatcher Job ${name}`);
      await waitGone(client, jobsPath(ns), { name }, o.deadline, `dead dispatcher Job ${name}`);
      await removeOrphanedPods(o, current.metadata?.uid);
    }
    const created = await createDispatcherJob(
      o,
      { ...replacement, metadata: { ...replacement.metadata, namespace: ns } },
      r.ownUids,
      `create replacement dispatcher Job ${name}`,
    );
    if (created === "conflict") continue;
    const note = `dispatcher replaced (attempt ${r.attempt}) for ${nodes.length} node(s) after: ${r.why}`;
    log(`${o.label}: ${note}`);
    return { note, job: created };
  }
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
  const notes: string[] = [];
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
  // The dispatcher Jobs of this run (a replacement adds its own): Jobs owned by any other belong to another rollout.
  const ownUids = new Set<string>();
  // Per-node Jobs that existed before this run's dispatcher was created (an earlier run's, even without an owner).
  const before = new Set<string>();
  let currentUid = "";
  let runStartedAt: string | undefined;
  const pods = new Map<string, PodLike[] | undefined>();
  const stuck = new Map<string, { since: number; reason: string }>();
  let podsReadable = true;
  let selected: SelectedNode[] | undefined;
  let nodeRecords: Map<string, NodeRecord> | undefined;
  let lastProgress = 0;
  let lastStuckScan = 0;
  const stuckScanEveryMs = Math.min(15_000, Math.max(250, (o.stuckGraceSeconds * 1000) / 4));
  let dispatcherStall: { since: number; reason: string } | undefined;
  /** Why the run cannot progress although its dispatcher runs (aggregate.runStalled); set once, ends the run. */
  let runStall: string | undefined;
  let selectionListed = false;

  let liveSelection: { at: number; nodes: SelectedNode[]; records: Map<string, NodeRecord> } | undefined;
  let state: JobRunState | undefined;
  let dispatcherTracked: TrackedJob | undefined;
  let ownDispatcher: { job: JobLike & Obj; deleted: boolean } | undefined;
  let replaced = 0;
  let loopError: unknown;
  /** This run's per-node Jobs as the cache has them. */
  const trackedJobs = (): TrackedJob[] =>
    jobs
      .all()
      .filter(({ obj }) => !before.has(obj.metadata?.uid ?? "") && ownedByRun(obj, ownUids))
      .map(({ obj, deleted }) => {
        const n = obj.metadata?.name ?? "";
        const s = stuck.get(n);
        return { job: obj, deleted, pods: pods.get(n), stuckSince: s?.since, stuckReason: s?.reason };
      });
  Promise.all(loops).catch((err: unknown) => (loopError = err));
  try {
    // The per-node Jobs are listed before the dispatcher exists, so every Job of this run is seen, even one that ends
    // and is removed (TTL 0) before the first watch event could be read: a replacement must never repeat it.
    while (!jobs.synced) {
      if (loopError) throw loopError;
      if (Date.now() >= o.deadline)
        throw new Error(`${o.label}: could not list per-node Jobs before the timeout`);
      await sleep(50, abort.signal);
    }
    const claimed = await claimDispatcher(o, notes, () => {
      for (const { obj } of jobs.all()) before.add(obj.metadata?.uid ?? "");
    });
    ownUids.add(claimed.uid);
    currentUid = claimed.uid;
    const adopted = claimed.adopted === true;
    runStartedAt = claimed.createdAt;

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
      const tracked = trackedJobs();

      const d = dispatcher.all()[0];
      const dUid = d?.obj.metadata?.uid ?? "";
      if (d && dUid === currentUid) {
        ownDispatcher = { job: d.obj, deleted: d.deleted };
      } else if (d && !ownUids.has(dUid) && ownDispatcher) {
        // Another rollout's dispatcher now has the name: ours is gone.
        ownDispatcher = { job: ownDispatcher.job, deleted: true };
      }
      dispatcherTracked = ownDispatcher ? { ...ownDispatcher, pods: pods.get(name) } : undefined;
      if (dispatcherTracked && jobOutcome(dispatcherTracked.job).phase === "failed" && !pods.has(name)) {
        pods.set(name, podsReadable ? await podsOfJob(client, ns, name).catch(() => undefined) : undefined);
        dispatcherTracked.pods = pods.get(name);
      }
      const dispatcherEnded =
        !!dispatcherTracked && (jobOutcome(dispatcherTracked.job).terminal || !!dispatcherTracked.deleted);
      const dispatcherDone =
        dispatcherEnded ||
        !!runStall ||
        dispatcherStalled({ dispatcherStall, now, stuckGraceSeconds: o.stuckGraceSeconds });
      // The selection is read once the dispatcher has listed nodes, so nodes it left out can be named; the same
      // Node objects carry the outcomes the dispatcher recorded (it records them before it exits).
      if ((dispatcherDone || timedOut) && selected === undefined) {
        const lists = await listSelection(client, stage).catch(() => undefined);
        selected = lists ? selectNodes(lists, stage.selection, stage.tolerations) : [];
        selectionListed = lists !== undefined;
        nodeRecords = recordsOf(lists ?? []);
      }
      const view: JobRunView = {
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
        adopted,
        dispatcherStall,
        runStartedAt,
        runStall,
        selectionListed,
        skipPayload: o.skipPayload,
      };
      // A running dispatcher waits for its stuck Jobs until the timeout: when every open Job is stuck past the grace
      // period and it cannot start another, the run ends now (the selection is read, at most once per stuck scan,
      // only while every open Job is stuck).
      if (!dispatcherDone && !timedOut && openJobsAllStuck(view) > 0) {
        if (liveSelection === undefined || now - liveSelection.at >= stuckScanEveryMs) {
          const lists = await listSelection(client, stage).catch(() => undefined);
          liveSelection = lists
            ? {
                at: now,
                nodes: selectNodes(lists, stage.selection, stage.tolerations),
                records: recordsOf(lists),
              }
            : undefined;
        }
        runStall = runStalled(
          liveSelection
            ? { ...view, selected: liveSelection.nodes, nodeRecords: liveSelection.records }
            : view,
          stage.parallelism,
        );
        // The next pass reads the selection and the nodes' records as for any dispatcher that is done.
        if (runStall) continue;
      }
      state = jobRunState(view);
      const left = selected && o.replacementJob ? nodesLeftUndispatched(view) : [];
      if (
        shouldReplaceDispatcher({
          phase: state.dispatcherPhase,
          exitCode: dispatcherExitCode(dispatcherTracked?.pods),
          left: left.length,
          replaced,
          timedOut,
        })
      ) {
        replaced++;
        const replacement = await replaceDispatcher(o, {
          attempt: replaced,
          // Read after the backoff, from a cache caught up with the API server: a Job the dead dispatcher made just
          // before it died (and that may already be gone, TTL 0) must be known before its node is handed on.
          nodesLeft: async () => {
            // A Job counts as failed as soon as its pod is being deleted, while the process may still be finishing
            // a create: wait until the dead dispatcher's pods have stopped (bounded), then read the Jobs.
            await dispatcherPodsStopped(client, ns, name, Date.now() + 60_000, abort.signal);
            const current = await client.list<Obj>(jobsPath(ns), { labelSelector: ownerSelector });
            if (!(await jobs.caughtUp(current.resourceVersion, Date.now() + 65_000, abort.signal))) return [];
            const lists = await listSelection(client, stage);
            return nodesLeftUndispatched({
              ...view,
              jobs: trackedJobs(),
              selected: selectNodes(lists, stage.selection, stage.tolerations),
              nodeRecords: recordsOf(lists),
              jobEventsLost: jobs.eventsLost,
            });
          },
          ownUids,
          why: state.dispatcherFailure ?? `dispatcher Job ${name} ended`,
          signal: abort.signal,
        });
        notes.push(replacement.note);
        if (replacement.job) {
          currentUid = replacement.job.metadata?.uid ?? "";
          ownUids.add(currentUid);
          ownDispatcher = { job: replacement.job, deleted: false };
        }
        // The new dispatcher's pod, stall and selection are read afresh.
        pods.delete(name);
        dispatcherStall = undefined;
        selected = undefined;
        selectionListed = false;
        nodeRecords = undefined;
        continue;
      }
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
    // A dispatcher that starts later would install outside any `pulumi up`, with nobody reporting: remove it. So is
    // a stuck per-node Job (its node may come back): its result is recorded as Stuck, and the next `up` runs it again.
    // A replacement dispatcher's Jobs have no owner, so garbage collection would not take them: each goes by name.
    const stuckJobs = runStall
      ? trackedJobs()
          .filter((t) => !t.deleted && !jobOutcome(t.job).terminal)
          .map((t) => t.job.metadata?.name ?? "")
          .filter(Boolean)
      : [];
    await client
      .delete(jobsPath(ns, name), "Background", `delete stalled dispatcher Job ${name}`)
      .catch(() => false);
    await Promise.all(
      stuckJobs.map((job) =>
        client.delete(jobsPath(ns, job), "Background", `delete stuck Job ${job}`).catch(() => false),
      ),
    );
    log(
      runStall
        ? `${o.label}: removed dispatcher Job ${ns}/${name} and ${stuckJobs.length} stuck per-node Job(s): ${runStall}`
        : `${o.label}: removed dispatcher Job ${ns}/${name}, which could not start`,
    );
  }
  return {
    results: state.results,
    timedOut: state.results.some((r) => r.reason === "Timeout"),
    dispatcherFailure: state.dispatcherFailure,
    dispatcherUid: currentUid,
    notes: notes.length ? notes : undefined,
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

/**
 * Nodes as the API server selects them: one LIST per label selector (their union is the selection), or all nodes.
 * `metadataOnly`: labels and annotations only (no taints).
 */
export async function listSelection(
  client: KubeClient,
  stage: DispatcherStage,
  metadataOnly = false,
): Promise<NodeLike[][]> {
  return Promise.all(
    selectionQueries(stage.selection).map(
      async (labelSelector) =>
        (
          await client.list<NodeLike>(
            NODES_PATH,
            labelSelector ? { labelSelector } : {},
            "list nodes",
            metadataOnly,
          )
        ).items,
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
