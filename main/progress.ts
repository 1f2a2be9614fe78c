// Live progress of a rollout, observed from the cluster itself (the per-node Jobs of the install owner, or
// the DaemonSet's pods): in flight, done, failed, ETA, and the samples of the rollout profile picture.
import * as k8s from "@kubernetes/client-node";
import { jobOutcome, type JobLike } from "../kube/jobStatus";
import type { ProfileSample } from "./profile";

export interface ProgressCounts {
  total: number;
  inFlight: number;
  done: number;
  failed: number;
}

export interface Observer {
  counts(): ProgressCounts;
  samples(): ProfileSample[];
  stop(): Promise<void>;
}

interface Tracked {
  active: boolean;
  done: boolean;
  failed: boolean;
}

/** Keeps per-object state from an informer and turns it into counts and time samples. */
class Tally {
  private readonly state = new Map<string, Tracked>();
  private readonly sampleList: ProfileSample[] = [];
  private inFlight = 0;
  private done = 0;
  private failed = 0;

  constructor(
    private readonly total: number,
    private readonly startedAt: number,
  ) {}

  set(key: string, next: Tracked | undefined): void {
    const prev = this.state.get(key);
    if (prev) this.add(prev, -1);
    if (next) {
      this.state.set(key, next);
      this.add(next, 1);
    } else this.state.delete(key);
    const last = this.sampleList[this.sampleList.length - 1];
    const sample = { t: Date.now() - this.startedAt, active: this.inFlight, done: this.done };
    if (!last || last.active !== sample.active || last.done !== sample.done) this.sampleList.push(sample);
  }

  private add(t: Tracked, sign: 1 | -1): void {
    if (t.active) this.inFlight += sign;
    if (t.done) this.done += sign;
    if (t.failed) this.failed += sign;
  }

  counts(): ProgressCounts {
    return { total: this.total, inFlight: this.inFlight, done: this.done, failed: this.failed };
  }

  samples(): ProfileSample[] {
    return [...this.sampleList, { t: Date.now() - this.startedAt, active: this.inFlight, done: this.done }];
  }
}

function keyOf(o: k8s.KubernetesObject): string {
  return `${o.metadata?.namespace}/${o.metadata?.name}`;
}

/** Starts an informer and keeps it running across dropped streams (client-node's stops on an error). */
async function observe<T extends k8s.KubernetesObject>(
  kc: k8s.KubeConfig,
  path: string,
  list: () => Promise<k8s.KubernetesListObject<T>>,
  labelSelector: string,
  onChange: (o: T, deleted: boolean) => void,
): Promise<() => Promise<void>> {
  const informer = k8s.makeInformer(kc, path, list, labelSelector);
  let stopped = false;
  informer.on("add", (o) => onChange(o, false));
  informer.on("update", (o) => onChange(o, false));
  informer.on("delete", (o) => onChange(o, true));
  informer.on("error", () => {
    if (!stopped) setTimeout(() => void informer.start().catch(() => undefined), 500);
  });
  await informer.start();
  return async () => {
    stopped = true;
    await informer.stop();
  };
}

/** Job mode: one entry per per-node Job of the install owner; a node is done when its Job is terminal. */
export async function observeJobs(
  kc: k8s.KubeConfig,
  namespace: string,
  owner: string,
  total: number,
): Promise<Observer> {
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const labelSelector = `kata-deploy-job-dispatcher/owner=${owner}`;
  const tally = new Tally(total, Date.now());
  const stop = await observe(
    kc,
    `/apis/batch/v1/namespaces/${namespace}/jobs`,
    () => batch.listNamespacedJob({ namespace, labelSelector }),
    labelSelector,
    (job, deleted) => {
      // A deleted Job (TTL) keeps the outcome it had: only a live Job changes the tally.
      if (deleted) return;
      const outcome = jobOutcome(job as JobLike);
      tally.set(keyOf(job), {
        active: !outcome.terminal,
        done: outcome.terminal,
        failed: outcome.terminal && outcome.phase === "failed",
      });
    },
  );
  return { counts: () => tally.counts(), samples: () => tally.samples(), stop };
}

/** Daemonset mode: one entry per DaemonSet pod; a node is done when its pod is Ready. */
export async function observeDaemonPods(
  kc: k8s.KubeConfig,
  namespace: string,
  podSelector: Record<string, string>,
  total: number,
): Promise<Observer> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const labelSelector = Object.entries(podSelector)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const tally = new Tally(total, Date.now());
  const stop = await observe(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    () => core.listNamespacedPod({ namespace, labelSelector }),
    labelSelector,
    (pod, deleted) => {
      const ready = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
      tally.set(keyOf(pod), deleted ? undefined : { active: !ready, done: ready, failed: false });
    },
  );
  return { counts: () => tally.counts(), samples: () => tally.samples(), stop };
}

/** `12s`, `3m05s`. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/** Remaining time from the completion rate so far; undefined until something finished. */
export function eta(counts: ProgressCounts, elapsedMs: number): number | undefined {
  if (counts.done === 0 || counts.total <= counts.done) return counts.total <= counts.done ? 0 : undefined;
  return ((elapsedMs / counts.done) * (counts.total - counts.done)) / 1000;
}
