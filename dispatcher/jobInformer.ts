// ONE list + watch of the owner's Jobs and a cache of what it saw (an informer): every Job of the run is tracked
// through it, so tracking costs no request per Job. A broken watch resumes from the last resourceVersion; a 410
// (that version is gone from the server's history) relists before watching again.
import { jobNodeName, jobTrackingKeys, OUTCOME_CONDITION_TYPES, type JobLike } from "../kube/jobStatus";
import type { DispatcherKubeApi, KubeJob, WatchHandle } from "./kubeApi";
import { apiFailureOf, sleep } from "./kubeApi";
import type { Logger } from "./log";
import { describeError } from "./options";

export interface JobInformerContext {
  api: () => DispatcherKubeApi;
  /** Runs one request with the run's retries; `what` names it in retry messages. */
  call: <T>(what: string, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>;
  namespace: string;
  labelSelector: string;
  /** `--tracking-label-prefix`: the cache keeps each Job's node under that prefix's node-name annotation. */
  trackingPrefix?: string;
  log: Logger;
  signal: AbortSignal;
  /** Runs background work the run keeps track of (a failure there is fatal to the run). */
  spawn: (task: () => Promise<void>) => void;
  /** A Job was added or changed (it is already in the cache). */
  onJob: (job: KubeJob) => void;
  /** A Job disappeared (DELETED event, or missing from a relist); it is already out of the cache. */
  onJobGone: (name: string, last: JobLike) => void;
  /** The watch was refused (401/403): no Job could be seen finishing. */
  onRefused: (code: 401 | 403) => void;
}

/**
 * What the informer keeps of a Job: whose it is, which node it serves and how it stands. That is all the run reads
 * of a cached Job, and at 100,000 Jobs every object and string counts (a Job as sent is ~5 KB): the node rides in
 * the one annotation `jobNodeName` reads, only the condition that decides `jobOutcome` is kept, and the strings
 * every Job repeats (owner UIDs, condition reasons and messages) are shared.
 */
export interface CachedJob extends JobLike {
  metadata: {
    name: string;
    uid?: string;
    deletionTimestamp?: string | Date;
    annotations?: Record<string, string>;
    ownerReferences?: readonly { uid: string }[];
  };
}

/** Distinct strings kept for sharing; past this, new strings are simply not shared (failure messages vary). */
const MAX_SHARED_STRINGS = 10_000;

export class JobInformer {
  private readonly jobs = new Map<string, CachedJob>();
  /** When each cached Job was last written (a counter): a relist snapshot must not override newer knowledge. */
  private readonly cachedAt = new Map<string, number>();
  private cacheClock = 0;
  private resourceVersion = "";
  private watch?: WatchHandle;
  private watchGeneration = 0;
  private stopped = false;

  /** Shared copies of repeated strings and owner-reference lists (see CachedJob). */
  private readonly shared = new Map<string, string>();
  private readonly sharedOwners = new Map<string, readonly { uid: string }[]>();

  constructor(private readonly ctx: JobInformerContext) {}

  get(name: string): CachedJob | undefined {
    return this.jobs.get(name);
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  all(): IterableIterator<CachedJob> {
    return this.jobs.values();
  }

  /** Cache a Job read outside the watch, unless the watch already holds this same Job (it is at least as recent). */
  remember(job: KubeJob): void {
    const name = job.metadata?.name;
    if (!name) return;
    const cached = this.jobs.get(name);
    if (!cached || cached.metadata?.uid !== job.metadata?.uid) this.cache(job);
  }

  /**
   * Stop keeping a Job the run is done with. Its later events still arrive (and are handed on as usual); a relist
   * snapshot taken before now does not bring it back.
   */
  forget(name: string): void {
    this.jobs.delete(name);
    this.cachedAt.set(name, ++this.cacheClock);
  }

  /** List every Job (paged) and reconcile the cache with it; the watch resumes from the list's resourceVersion. */
  async relist(): Promise<void> {
    // Anything cached after this point (watch events, create responses) is newer than the list's snapshot.
    const snapshotAt = this.cacheClock;
    const seen = new Map<string, KubeJob>();
    let continueToken: string | undefined;
    let resourceVersion = "";
    for (;;) {
      const page = await this.ctx.call("list Jobs", (s) =>
        this.ctx
          .api()
          .listJobs(
            this.ctx.namespace,
            { labelSelector: this.ctx.labelSelector, limit: 500, continueToken },
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
    const unsure: [string, CachedJob][] = [];
    for (const [name, job] of [...this.jobs]) {
      if (seen.has(name)) continue;
      if (older(name)) this.gone(name, job);
      else unsure.push([name, job]);
    }
    for (const [name, job] of seen) if (older(name)) this.changed(job);
    // Cached while the list was under way (a create's answer) and missing from it: created after the list's
    // snapshot (the watch from its resourceVersion will tell), or created and removed before it (a TTL of 0), which
    // no event will ever tell, and its node would wait for good. A GET says which.
    for (const [name, job] of unsure) this.ctx.spawn(() => this.confirm(name, job));
  }

  /** A cached Job the list did not show: gone unless a GET still finds this same Job. */
  private async confirm(name: string, job: CachedJob): Promise<void> {
    try {
      const now = await this.ctx.call(`get Job ${name}`, (s) =>
        this.ctx.api().getJob(this.ctx.namespace, name, s),
      );
      if (now.metadata?.uid === job.metadata.uid) return;
    } catch (err) {
      if (apiFailureOf(err).code !== 404) return;
    }
    if (this.jobs.get(name) === job) this.gone(name, job);
  }

  /** Resolves once the watch is connected, or once its failure was handed on (a restart, or `onRefused`). */
  watchFromLastList(): Promise<void> {
    const generation = ++this.watchGeneration;
    let needRelist = false;
    const restart = (relist: boolean, err?: unknown) => {
      if (generation !== this.watchGeneration || this.stopped) return;
      this.watchGeneration++;
      this.watch = undefined;
      if (err)
        this.ctx.log.log(
          "warn",
          `Job watch ended (${describeError(err)}); ${relist ? "relisting" : "resuming"}`,
        );
      this.ctx.spawn(async () => {
        await sleep(err ? 250 + Math.random() * 500 : 0, this.ctx.signal).catch(() => undefined);
        if (this.stopped) return;
        if (relist) await this.relist();
        if (!this.stopped) await this.watchFromLastList();
      });
    };
    return this.ctx
      .api()
      .watchJobs(
        this.ctx.namespace,
        { labelSelector: this.ctx.labelSelector, resourceVersion: this.resourceVersion },
        (type, object) => {
          if (generation !== this.watchGeneration) return;
          if (type === "ERROR") {
            needRelist = true;
            this.ctx.log.log(
              "info",
              `Job watch: ${object.code ?? ""} ${object.reason ?? ""} ${object.message ?? ""}`.trim(),
            );
            return;
          }
          const rv = object.metadata && (object.metadata as { resourceVersion?: string }).resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (type === "BOOKMARK") return;
          if (type === "DELETED") this.gone(object.metadata?.name ?? "", object);
          else this.changed(object);
        },
        (err) => {
          const code = (err as { statusCode?: number } | undefined)?.statusCode;
          if (code === 401 || code === 403) {
            this.ctx.onRefused(code);
            return;
          }
          // A closed or broken stream resumes from the last resourceVersion seen: the server replays every event
          // after it, so nothing is lost (kubernetes-api-facts.md §4). Only an ERROR event or a 410 (that version
          // is no longer in the server's history) relists. client-node ends a watch quiet for 30 s with a
          // TimeoutError, which is no news either.
          const quiet = (err as { name?: string } | undefined)?.name === "TimeoutError";
          restart(
            needRelist || code === 410,
            err && code !== undefined ? `HTTP ${code}` : quiet ? undefined : err,
          );
        },
      )
      .then((handle) => {
        if (generation === this.watchGeneration && !this.stopped) this.watch = handle;
        else handle.stop();
      })
      .catch((err) => restart(!this.resourceVersion || apiFailureOf(err).code === 410, err));
  }

  stop(): void {
    this.stopped = true;
    this.watchGeneration++;
    this.watch?.stop();
  }

  private cache(job: KubeJob): void {
    const name = job.metadata?.name as string;
    this.jobs.set(name, this.slim(job));
    this.cachedAt.set(name, ++this.cacheClock);
  }

  private slim(job: KubeJob): CachedJob {
    const m = job.metadata ?? {};
    const node = jobNodeName(job, this.ctx.trackingPrefix);
    const s = job.status ?? {};
    // jobOutcome decides by the first true condition in this order: that one alone gives the same outcome.
    const decisive = OUTCOME_CONDITION_TYPES.map((type) =>
      s.conditions?.find((c) => c.type === type && c.status === "True"),
    ).find((c) => c !== undefined);
    return {
      metadata: {
        name: m.name as string,
        uid: m.uid,
        ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
        ...(node ? { annotations: { [jobTrackingKeys(this.ctx.trackingPrefix).nodeName]: node } } : {}),
        ...(m.ownerReferences ? { ownerReferences: this.owners(m.ownerReferences) } : {}),
      },
      status: {
        succeeded: s.succeeded,
        failed: s.failed,
        startTime: s.startTime,
        completionTime: s.completionTime,
        ...(decisive
          ? {
              conditions: [
                {
                  type: this.share(decisive.type),
                  status: this.share(decisive.status),
                  reason: decisive.reason === undefined ? undefined : this.share(decisive.reason),
                  message: decisive.message === undefined ? undefined : this.share(decisive.message),
                  lastTransitionTime: decisive.lastTransitionTime,
                },
              ],
            }
          : {}),
      },
    };
  }

  private share(value: string): string {
    const known = this.shared.get(value);
    if (known !== undefined) return known;
    if (this.shared.size < MAX_SHARED_STRINGS) this.shared.set(value, value);
    return value;
  }

  private owners(refs: readonly { uid: string }[]): readonly { uid: string }[] {
    const key = refs.map((r) => r.uid).join(",");
    let list = this.sharedOwners.get(key);
    if (!list) {
      list = Object.freeze(refs.map((r) => Object.freeze({ uid: r.uid })));
      if (this.sharedOwners.size < MAX_SHARED_STRINGS) this.sharedOwners.set(key, list);
    }
    return list;
  }

  private changed(job: KubeJob): void {
    if (!job.metadata?.name) return;
    this.cache(job);
    this.ctx.onJob(job);
  }

  private gone(name: string, last: JobLike): void {
    const cached = this.jobs.get(name);
    // A newer Job of the same name (the replacement of an earlier run's Job) is already known: not this one's business.
    if (cached && last.metadata?.uid && cached.metadata?.uid && cached.metadata.uid !== last.metadata.uid)
      return;
    this.forget(name);
    this.ctx.onJobGone(name, last);
  }
}
