// Runs one phase of a chart's Helm hooks against a cluster, in Helm's order and with Helm's delete policies
// (kube/helmHooks.ts decides; this file does the I/O): for each hook, delete an earlier copy (before-hook-creation),
// create it, wait for a Job or Pod to finish; then delete what the policies say. The cluster is behind `HookCluster`,
// so the order of calls is testable by itself; `kubeHookCluster` is the real one. Node built-ins only (serialized
// with the rollout's provider).
import {
  awaitsCompletion,
  deletesOn,
  deletionsAfter,
  phaseHooks,
  type Hook,
  type HookObject,
  type HookPhase,
} from "../kube/helmHooks";
import { jobOutcome, type JobLike } from "../kube/jobStatus";
import { collectionPath, objectPath } from "../kube/resourcePaths";
import { isNotFound, KubeApiError, type KubeClient } from "./kubeClient";
import type { Logger } from "./waiter";

/** How a hook ended. */
export interface HookOutcome {
  ok: boolean;
  message?: string;
}

/** The cluster operations a hook phase needs. */
export interface HookCluster {
  /** Delete the object (background propagation) and wait until it is gone; absent counts as done. */
  deleteAndWait(object: HookObject, deadline: number): Promise<void>;
  /** Create the object; an existing one of that name is replaced. */
  create(object: HookObject): Promise<void>;
  /** Wait until a Job is Complete or Failed, a Pod Succeeded or Failed. */
  waitDone(object: HookObject, deadline: number): Promise<HookOutcome>;
  /** Wait until the object is gone (deleted by someone else); false when it is still there at the deadline. */
  waitGone(object: HookObject, deadline: number): Promise<boolean>;
}

export interface HookPhaseOptions {
  deadline: number;
  log: Logger;
  /**
   * Runs a hook in the caller's own way instead of delete-before, create and wait (the rollout runs the chart's
   * dispatcher Jobs so, to follow and report their per-node Jobs); undefined for hooks it leaves to the runner.
   */
  runHook?: (hook: Hook) => Promise<HookOutcome> | undefined;
}

export interface HookPhaseResult {
  phase: HookPhase;
  /** `Kind/name` of each hook started, in run order. */
  ran: string[];
  /** The hook that failed and why; the phase stops there, as Helm's does. */
  failed?: { hook: string; message: string };
  /** `Kind/name` of the hooks deleted after the phase by their policies, in deletion order. */
  deleted: string[];
}

function label(h: Hook): string {
  return `${h.kind}/${h.name}`;
}

/** Runs the hooks of `phase` among `hooks` (any phases) as Helm's execHook does. */
export async function runHookPhase(
  phase: HookPhase,
  hooks: readonly Hook[],
  cluster: HookCluster,
  options: HookPhaseOptions,
): Promise<HookPhaseResult> {
  const ordered = phaseHooks(hooks, phase);
  const result: HookPhaseResult = { phase, ran: [], deleted: [] };
  if (ordered.length === 0) return result;
  options.log(`${phase} hooks: ${ordered.map(label).join(", ")}`);
  let failedAt: number | undefined;
  for (let i = 0; i < ordered.length; i++) {
    const h = ordered[i];
    result.ran.push(label(h));
    let outcome: HookOutcome;
    try {
      const own = options.runHook?.(h);
      if (own) outcome = await own;
      else {
        if (deletesOn(h, "before-hook-creation")) await cluster.deleteAndWait(h.object, options.deadline);
        await cluster.create(h.object);
        outcome = awaitsCompletion(h) ? await cluster.waitDone(h.object, options.deadline) : { ok: true };
      }
    } catch (err) {
      outcome = { ok: false, message: (err as Error).message };
    }
    if (!outcome.ok) {
      failedAt = i;
      result.failed = { hook: label(h), message: outcome.message ?? "failed" };
      options.log(`${phase} hook ${label(h)} failed: ${result.failed.message}`);
      break;
    }
  }
  for (const h of deletionsAfter(ordered, failedAt)) {
    await cluster.deleteAndWait(h.object, options.deadline);
    result.deleted.push(label(h));
  }
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The object without server-set fields, ready to create. */
function forCreate(object: HookObject, namespace: string, namespaced: boolean): HookObject {
  const copy = JSON.parse(JSON.stringify(object)) as HookObject & { status?: unknown };
  delete copy.status;
  if (namespaced && copy.metadata && !copy.metadata.namespace) copy.metadata.namespace = namespace;
  return copy;
}

interface PodLikeStatus {
  status?: { phase?: string; message?: string; reason?: string };
  metadata?: { resourceVersion?: string };
}

/** The HookCluster of a real API server (or kube-sim), through the rollout's client. */
export function kubeHookCluster(client: KubeClient, namespace: string): HookCluster {
  const what = (o: HookObject) => `${o.kind}/${o.metadata?.name}`;
  const waitGone = async (object: HookObject, deadline: number): Promise<boolean> => {
    const path = objectPath(object, namespace);
    for (let i = 0; ; i++) {
      if ((await client.getOptional(path)) === undefined) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(1_000, 50 * 2 ** Math.min(i, 5)));
    }
  };
  return {
    waitGone,
    async deleteAndWait(object, deadline) {
      await client.delete(objectPath(object, namespace), "Background", `delete ${what(object)}`);
      if (!(await waitGone(object, deadline)))
        throw new Error(`${what(object)} is still present after its deletion`);
    },
    async create(object) {
      const collection = collectionPath(object, namespace);
      const body = forCreate(object, namespace, collection.includes("/namespaces/"));
      try {
        await client.create(collection, body, `create hook ${what(object)}`);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.code === 409)) throw err;
        // Helm 4 applies hooks server-side: a hook kept from an earlier run (no before-hook-creation) is replaced.
        const path = objectPath(object, namespace);
        const live = await client.get<PodLikeStatus>(path);
        const replaced = {
          ...body,
          metadata: { ...body.metadata, resourceVersion: live.metadata?.resourceVersion },
        };
        await client.request("PUT", path, { body: replaced, what: `replace hook ${what(object)}` });
      }
    },
    async waitDone(object, deadline) {
      const path = objectPath(object, namespace);
      for (let i = 0; ; i++) {
        let live: (JobLike & PodLikeStatus) | undefined;
        try {
          live = await client.get<JobLike & PodLikeStatus>(path);
        } catch (err) {
          if (isNotFound(err))
            return { ok: false, message: `${what(object)} was deleted before it finished` };
          throw err;
        }
        if (object.kind === "Job") {
          const outcome = jobOutcome(live);
          if (outcome.terminal)
            return outcome.phase === "succeeded"
              ? { ok: true }
              : { ok: false, message: `job failed: ${outcome.reason ?? ""} ${outcome.message ?? ""}`.trim() };
        } else {
          const phase = live.status?.phase;
          if (phase === "Succeeded") return { ok: true };
          if (phase === "Failed")
            return { ok: false, message: `pod failed: ${live.status?.reason ?? live.status?.message ?? ""}` };
        }
        if (Date.now() >= deadline)
          return { ok: false, message: `${what(object)}: timed out waiting to finish` };
        await sleep(Math.min(1_000, 50 * 2 ** Math.min(i, 5)));
      }
    },
  };
}
