// The dispatcher's Kubernetes calls, through @kubernetes/client-node, with one retry policy for all of them:
// 429 honours Retry-After, 5xx and connection errors back off with jitter, each call has a timeout and a budget.
import {
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  Watch,
  type CoreV1Event,
  type V1Job,
} from "@kubernetes/client-node";
import type { JobLike, PodLike } from "../kube/jobStatus";
import type { JsonPatchOp } from "../kube/nodeLabels";
import type { NodeLike } from "./admission";
import type { JobManifest } from "./template";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface ListPage<T> {
  items: T[];
  continueToken?: string;
  resourceVersion?: string;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continueToken?: string;
}

export interface WatchHandle {
  stop(): void;
}

/** What the dispatcher needs from the API server. `signal` aborts the HTTP request (timeouts, shutdown). */
export interface DispatcherKubeApi {
  listNodes(options: ListOptions, signal?: AbortSignal): Promise<ListPage<NodeLike>>;
  getJob(namespace: string, name: string, signal?: AbortSignal): Promise<KubeJob>;
  createJob(namespace: string, job: JobManifest, signal?: AbortSignal): Promise<KubeJob>;
  /** DELETE with Foreground propagation: the name stays taken until the Job's pods are gone. */
  deleteJob(namespace: string, name: string, signal?: AbortSignal): Promise<void>;
  listJobs(namespace: string, options: ListOptions, signal?: AbortSignal): Promise<ListPage<KubeJob>>;
  listPods(namespace: string, options: ListOptions, signal?: AbortSignal): Promise<PodLike[]>;
  /** One pod (`--owner-job-from-pod` reads its owner); optional: only that flag needs it. */
  getPod?(namespace: string, name: string, signal?: AbortSignal): Promise<OwnedObject>;
  /** JSON merge patch of a Node (the outcome record); optional: fakes and the poll bench need not record. */
  patchNode?(name: string, patch: object, signal?: AbortSignal): Promise<void>;
  /** GET `/api/v1/nodes/<node>/proxy/<path>` (the kubelet's `configz`), parsed JSON; optional: advisory only. */
  getNodeProxy?(node: string, path: string, signal?: AbortSignal): Promise<unknown>;
  /** RFC 6902 JSON patch of a Node (guarded label and taint writes of the node work); optional like patchNode. */
  jsonPatchNode?(name: string, ops: readonly JsonPatchOp[], signal?: AbortSignal): Promise<void>;
  /** Create a core/v1 Event (the outcome and stall reports); optional like patchNode. */
  createEvent?(namespace: string, event: NodeEvent, signal?: AbortSignal): Promise<void>;
  /** Streams events until the server closes, the stream breaks or stop() is called; `done` is called once. */
  watchJobs(
    namespace: string,
    options: { labelSelector: string; resourceVersion: string },
    onEvent: (type: WatchEventType, object: KubeJob & WatchErrorStatus) => void,
    done: (err?: unknown) => void,
  ): Promise<WatchHandle>;
}

export type KubeJob = JobLike & JobManifest;

/** An object's name, UID and owners: what the ownership flags read of a pod or a Job. */
export interface OwnedObject {
  metadata?: {
    name?: string;
    uid?: string;
    ownerReferences?: {
      apiVersion?: string;
      kind?: string;
      name: string;
      uid: string;
      controller?: boolean;
    }[];
  };
}

/** A core/v1 Event about a Node, as k8s-job-dispatcher 0.3 reports outcomes and stalls. */
export interface NodeEvent {
  apiVersion: "v1";
  kind: "Event";
  metadata: { generateName: string; namespace: string };
  involvedObject: { apiVersion: "v1"; kind: "Node"; name: string; uid?: string };
  related?: { apiVersion: "batch/v1"; kind: "Job"; name: string; namespace: string; uid?: string };
  reason: "JobSucceeded" | "JobFailed" | "JobPending";
  message: string;
  type: "Normal" | "Warning";
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

/** The Status object of an ERROR watch event (410 Expired and friends). */
export interface WatchErrorStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/** An API error reduced to what decisions need. */
export interface ApiFailure {
  /** HTTP status, or undefined for connection errors and timeouts. */
  code?: number;
  reason?: string;
  message: string;
  retryAfterSeconds?: number;
  /** No HTTP answer because the exchange failed (connection refused/reset, timeout): worth retrying. */
  transport?: boolean;
}

/** Error thrown after the retry policy gave up or for a non-retryable answer. */
export class KubeRequestError extends Error {
  override readonly name = "KubeRequestError";
  constructor(
    readonly what: string,
    readonly failure: ApiFailure,
  ) {
    super(
      `${what}: ${failure.code ? `HTTP ${failure.code}${failure.reason ? ` ${failure.reason}` : ""}: ` : ""}${failure.message}`,
    );
  }
  get code(): number | undefined {
    return this.failure.code;
  }
}

function parseStatusBody(body: unknown): { reason?: string; message?: string; retryAfterSeconds?: number } {
  let value: unknown = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return { message: body.trim() || undefined };
    }
  }
  if (value && typeof value === "object") {
    const status = value as { reason?: string; message?: string; details?: { retryAfterSeconds?: number } };
    return {
      reason: status.reason,
      message: status.message,
      retryAfterSeconds: status.details?.retryAfterSeconds,
    };
  }
  return {};
}

/** Classify anything a client-node call can throw. */
export function apiFailureOf(err: unknown): ApiFailure {
  if (err instanceof KubeRequestError) return err.failure;
  const e = err as {
    code?: unknown;
    body?: unknown;
    headers?: Record<string, string>;
    message?: string;
    cause?: { code?: string; message?: string };
    name?: string;
  };
  if (typeof e?.code === "number") {
    const status = parseStatusBody(e.body);
    const header = e.headers?.["retry-after"];
    const retryAfter =
      header !== undefined && /^\d+$/.test(header.trim()) ? Number(header) : status.retryAfterSeconds;
    return {
      code: e.code,
      reason: status.reason,
      message: status.message ?? `HTTP ${e.code}`,
      retryAfterSeconds: retryAfter,
    };
  }
  const cause = e?.cause?.code ?? e?.cause?.message;
  return {
    message: `${e?.message ?? String(err)}${cause ? ` (${cause})` : ""}`,
    transport: isTransportError(e),
  };
}

const TRANSPORT_CODES =
  /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|UND_ERR_\w+)$/;

/** A failed exchange (connection refused or reset, socket closed, timeout), as opposed to a client-side mistake. */
function isTransportError(
  e:
    { name?: string; message?: string; code?: unknown; cause?: { code?: string; name?: string } } | undefined,
): boolean {
  if (!e) return false;
  if (e.name === "AbortError" || e.name === "TimeoutError") return true;
  if (typeof e.code === "string" && TRANSPORT_CODES.test(e.code)) return true;
  if (e.cause?.code && TRANSPORT_CODES.test(e.cause.code)) return true;
  if (e.cause?.name === "SocketError" || e.cause?.name === "ConnectTimeoutError") return true;
  return e.name === "TypeError" && /fetch failed|terminated/.test(e.message ?? "");
}

/** 429, 5xx (except 501) and transport errors are worth retrying; everything else is an answer. */
export function isRetryable(failure: ApiFailure): boolean {
  if (failure.code === undefined) return failure.transport === true;
  return failure.code === 429 || (failure.code >= 500 && failure.code !== 501);
}

export interface RetryPolicy {
  /** Attempts per call, including the first. */
  attempts: number;
  /** Total time a call may spend retrying, ms. */
  budgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 10,
  budgetMs: 120_000,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  timeoutMs: 30_000,
};

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted");
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Delay before retry `attempt` (1-based): Retry-After when the server gave one, else full-jitter exponential backoff. */
export function retryDelayMs(
  failure: ApiFailure,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (failure.code === 429 && failure.retryAfterSeconds !== undefined)
    return Math.max(0, failure.retryAfterSeconds * 1000);
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

export interface CallContext {
  signal?: AbortSignal;
  policy?: RetryPolicy;
  onRetry?: (what: string, failure: ApiFailure, delayMs: number) => void;
}

/** Run `call` under the retry policy; `call` receives a signal that aborts on timeout or on the caller's abort. */
export async function withRetry<T>(
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  ctx: CallContext = {},
): Promise<T> {
  const policy = ctx.policy ?? DEFAULT_RETRY;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal);
    const attemptAbort = attemptSignal(ctx.signal, policy.timeoutMs);
    try {
      return await call(attemptAbort.signal).finally(attemptAbort.release);
    } catch (err) {
      if (ctx.signal?.aborted) throw abortError(ctx.signal);
      const failure: ApiFailure = attemptAbort.timedOut()
        ? { message: `no answer within ${policy.timeoutMs} ms`, transport: true }
        : apiFailureOf(err);
      const delay = retryDelayMs(failure, attempt, policy);
      const exhausted = attempt >= policy.attempts || Date.now() - started + delay > policy.budgetMs;
      if (!isRetryable(failure) || exhausted) {
        throw new KubeRequestError(
          exhausted && isRetryable(failure) ? `${what} (gave up after ${attempt} attempt(s))` : what,
          failure,
        );
      }
      ctx.onRetry?.(what, failure, delay);
      await sleep(delay, ctx.signal);
    }
  }
}

/**
 * One attempt's signal: aborted by the caller's signal or after `timeoutMs`, and released as soon as the attempt
 * ends. Not AbortSignal.any + AbortSignal.timeout: on Node 22 `any` over a run-long signal kept about 600 bytes per
 * call for good (measured: 100,000 calls, after GC), which at 100,000 nodes was a third of the dispatcher's memory.
 */
function attemptSignal(
  parent: AbortSignal | undefined,
  timeoutMs: number,
): { signal: AbortSignal; timedOut: () => boolean; release: () => void } {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError"));
  }, timeoutMs);
  const onParentAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    release: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}

/** Converts typed client objects (Date fields) back to the JSON the API sent, so every consumer sees one shape. */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The client-node implementation. Per-attempt signals reach the HTTP request through a request middleware. */
export function clientNodeApi(kubeConfig: KubeConfig): DispatcherKubeApi {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const watcher = new Watch(kubeConfig);
  type Options = Parameters<CoreV1Api["listNode"]>[1];
  type RequestContext = Parameters<NonNullable<NonNullable<Options>["middleware"]>[number]["pre"]>[0];
  // client-node 2.0.1 builds a new connection pool (undici Agent) for every request once TLS options are set, so
  // nothing is kept alive: every call pays a new TCP (and TLS) handshake. Reuse the first pool for all calls.
  let sharedDispatcher: ReturnType<RequestContext["getDispatcher"]>;
  const options = (signal?: AbortSignal, contentType?: string): Options => ({
    middleware: [
      {
        pre: (ctx) => {
          sharedDispatcher ??= ctx.getDispatcher();
          if (sharedDispatcher) ctx.setDispatcher(sharedDispatcher);
          if (signal) ctx.setSignal(signal);
          if (contentType) ctx.setHeaderParam("Content-Type", contentType);
          return new Observable(Promise.resolve(ctx));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  });
  const page = <T>(list: {
    items: unknown[];
    metadata?: { _continue?: string; resourceVersion?: string };
  }): ListPage<T> => ({
    items: plain<T[]>(list.items),
    continueToken: list.metadata?._continue || undefined,
    resourceVersion: list.metadata?.resourceVersion,
  });
  return {
    async listNodes(o, signal) {
      const query = {
        labelSelector: o.labelSelector || undefined,
        fieldSelector: o.fieldSelector || undefined,
        limit: o.limit,
        _continue: o.continueToken,
      };
      return page<NodeLike>(await core.listNode(query, options(signal)));
    },
    async getJob(namespace, name, signal) {
      return plain(await batch.readNamespacedJob({ name, namespace }, options(signal)));
    },
    async createJob(namespace, job, signal) {
      return plain(await batch.createNamespacedJob({ namespace, body: job as V1Job }, options(signal)));
    },
    async deleteJob(namespace, name, signal) {
      await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: "Foreground" }, options(signal));
    },
    async listJobs(namespace, o, signal) {
      const query = {
        namespace,
        labelSelector: o.labelSelector,
        fieldSelector: o.fieldSelector,
        limit: o.limit,
        _continue: o.continueToken,
      };
      return page<KubeJob>(await batch.listNamespacedJob(query, options(signal)));
    },
    async listPods(namespace, o, signal) {
      const query = {
        namespace,
        labelSelector: o.labelSelector,
        fieldSelector: o.fieldSelector,
        limit: o.limit,
      };
      return page<PodLike>(await core.listNamespacedPod(query, options(signal))).items;
    },
    async getPod(namespace, name, signal) {
      return plain(await core.readNamespacedPod({ name, namespace }, options(signal)));
    },
    async patchNode(name, patch, signal) {
      await core.patchNode({ name, body: patch }, options(signal, "application/merge-patch+json"));
    },
    async getNodeProxy(name, path, signal) {
      const text = await core.connectGetNodeProxyWithPath({ name, path }, options(signal));
      return typeof text === "string" ? (JSON.parse(text) as unknown) : text;
    },
    async jsonPatchNode(name, ops, signal) {
      await core.patchNode({ name, body: ops }, options(signal, "application/json-patch+json"));
    },
    async createEvent(namespace, event, signal) {
      // The typed client serializes Date fields; the API's JSON has RFC 3339 strings.
      const body = {
        ...event,
        firstTimestamp: new Date(event.firstTimestamp),
        lastTimestamp: new Date(event.lastTimestamp),
      } as CoreV1Event;
      await core.createNamespacedEvent({ namespace, body }, options(signal));
    },
    async watchJobs(namespace, o, onEvent, done) {
      const controller = await watcher.watch(
        `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`,
        {
          labelSelector: o.labelSelector,
          resourceVersion: o.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: 300,
        },
        (type: string, object: unknown) =>
          onEvent(type as WatchEventType, object as KubeJob & WatchErrorStatus),
        (err: unknown) => done(err ?? undefined),
      );
      return { stop: () => controller.abort() };
    },
  };
}
