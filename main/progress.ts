// Live progress of a rollout, observed from the cluster itself (the per-node Jobs of a dispatcher stage's owner,
// or the DaemonSet's pods): in flight, done, failed, ETA, the samples of the rollout profile picture, and the
// progress line that shows them.
import * as tty from "node:tty";
import * as k8s from "@kubernetes/client-node";
import { SingleBar } from "cli-progress";
import type { NodeLike } from "../dispatcher/admission";
import { jobOutcome } from "../kube/jobStatus";
import { admitSelected, selectionQueries, type NodeSelection } from "../kube/nodeSelection";
import { DAEMONSET_AUTOMATIC_TOLERATIONS, type Toleration } from "../kube/tolerations";
import type { RolloutInputs } from "../rollout/types";
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

/** Job mode: one entry per per-node Job of a stage's owner (install or cleanup); a node is done when its Job is terminal. */
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
      const outcome = jobOutcome(job);
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

/** Which run of the rollout: the install (create/update), or the cleanup (delete, job mode). */
export type RunStage = "install" | "cleanup";

/** The nodes a run works on as data: the selection and the tolerations its pods carry; undefined when none runs. */
function runSelection(
  inputs: RolloutInputs,
  stage: RunStage,
): { selection: NodeSelection; tolerations: Toleration[] } | undefined {
  if (inputs.mode === "daemonset") {
    if (stage !== "install") return undefined;
    const ds = inputs.daemonSet;
    const selector = Object.entries(ds?.nodeSelector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    return { selection: selector ? { selectors: [selector] } : {}, tolerations: ds?.tolerations ?? [] };
  }
  const run = stage === "install" ? inputs.install : inputs.cleanup;
  return run ? { selection: run.selection, tolerations: run.tolerations ?? [] } : undefined;
}

/** The nodes a run will work on, as the dispatcher (or the DaemonSet controller) admits them. */
export async function eligibleNodes(
  kc: k8s.KubeConfig,
  inputs: RolloutInputs,
  stage: RunStage,
): Promise<number> {
  const run = runSelection(inputs, stage);
  if (!run) return 0;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list = async (labelSelector?: string): Promise<NodeLike[]> => {
    const out: NodeLike[] = [];
    let token: string | undefined;
    do {
      const page = await core.listNode({ labelSelector, limit: 500, _continue: token });
      out.push(...(page.items as NodeLike[]));
      token = page.metadata?._continue || undefined;
    } while (token);
    return out;
  };
  // As the dispatcher and the DaemonSet controller will: names win, else the union of the selectors; then taints.
  const listed = await Promise.all(selectionQueries(run.selection).map((s) => list(s)));
  return admitSelected(listed, run.selection, [...run.tolerations, ...DAEMONSET_AUTOMATIC_TOLERATIONS])
    .admitted.length;
}

/**
 * On a terminal, the progress line is redrawn in place. The rollout's own log lines (the provider writes them
 * to stderr, as it does under the Pulumi engine) would be appended to the bar's line: while the bar is shown,
 * each of them first clears that line, and the bar draws through its own stream so it is not affected.
 */
function clearBarLineBeforeEachWrite(): () => void {
  const original = process.stderr.write;
  process.stderr.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const text = typeof chunk === "string" ? `\r\x1b[2K${chunk}` : chunk;
    return (original as (...a: unknown[]) => boolean).call(this, text, ...rest);
  };
  return () => {
    process.stderr.write = original;
  };
}

/** Shows the observer's counts as a live progress line on stderr (when `show`); returns what stops it. */
export function showProgress(observer: Observer, show: boolean): () => void {
  if (!show) return () => undefined;
  const started = Date.now();
  const total = observer.counts().total;
  const onTerminal = process.stderr.isTTY;
  const bar = new SingleBar({
    format:
      "{bar} {done}/{total} nodes done, {failed} failed, {inFlight} in flight | {elapsed} elapsed, ETA {remaining}",
    stream: onTerminal ? new tty.WriteStream(2) : process.stderr,
    hideCursor: true,
    barsize: 30,
    noTTYOutput: true,
    notTTYSchedule: 2000,
  });
  const values = () => {
    const c = observer.counts();
    const remaining = eta(c, Date.now() - started);
    return {
      done: c.done,
      failed: c.failed,
      inFlight: c.inFlight,
      elapsed: formatSeconds((Date.now() - started) / 1000),
      remaining: remaining === undefined ? "-" : formatSeconds(remaining),
    };
  };
  const restoreStderr = onTerminal ? clearBarLineBeforeEachWrite() : () => undefined;
  bar.start(total, 0, values());
  const timer = setInterval(() => bar.update(observer.counts().done, values()), 200);
  return () => {
    clearInterval(timer);
    bar.update(observer.counts().done, values());
    bar.stop();
    restoreStderr();
  };
}
