// Reading the pods of the run's Jobs: why a Job failed (container exit codes and messages) and whether a pod is stuck.
// Pods are optional for the dispatcher (chart 4.0.0's Role does not grant them): on 401/403 it says so once and
// stops asking, and results fall back to what the Job conditions say.
import { describePodFailure, type JobLike, type PodLike } from "../kube/jobStatus";
import { apiFailureOf, type ListOptions } from "./kubeApi";
import type { Logger } from "./log";
import { describeError } from "./options";

export interface PodReaderContext {
  /** One LIST of pods in the run's namespace, with the run's retries; `what` names it in retry messages. */
  listPods: (what: string, options: ListOptions) => Promise<PodLike[]>;
  namespace: string;
  /** The owner label selector every pod of the run's Jobs carries. */
  labelSelector: string;
  log: Logger;
  /** True once the run was killed: failures then are expected and not worth a warning. */
  killed: () => boolean;
}

type PodMeta = { ownerReferences?: { uid: string }[]; labels?: Record<string, string> } | undefined;

export class PodReader {
  private allowed = true;

  constructor(private readonly ctx: PodReaderContext) {}

  /** False once the API server refused pod reads. */
  get readable(): boolean {
    return this.allowed;
  }

  /** Why the Job's pods failed, as "container X exited N: ..."; undefined when unknown or unreadable. */
  async failureDetail(job: JobLike, node: string): Promise<string | undefined> {
    const pods = await this.list(`list pods of Job ${job.metadata?.name}`, `spec.nodeName=${node}`);
    if (!pods) return undefined;
    const uid = job.metadata?.uid;
    const own = pods.filter((p) => {
      const refs = (p.metadata as PodMeta)?.ownerReferences;
      return !uid || !refs || refs.length === 0 || refs.some((r) => r.uid === uid);
    });
    return describePodFailure(own);
  }

  /** Every pod of the run, grouped per Job name (by owner UID, or the job-name label); undefined when unreadable. */
  async byJob(jobs: { name: string; uid?: string }[]): Promise<Map<string, PodLike[]> | undefined> {
    const pods = await this.list("list pods");
    if (!pods) return undefined;
    const grouped = new Map<string, PodLike[]>();
    for (const { name, uid } of jobs) {
      grouped.set(
        name,
        pods.filter((p) => {
          const meta = p.metadata as PodMeta;
          return meta?.ownerReferences?.some((r) => r.uid === uid) ?? meta?.labels?.["job-name"] === name;
        }),
      );
    }
    return grouped;
  }

  private async list(what: string, fieldSelector?: string): Promise<PodLike[] | undefined> {
    if (!this.allowed) return undefined;
    try {
      return await this.ctx.listPods(what, { labelSelector: this.ctx.labelSelector, fieldSelector });
    } catch (err) {
      const code = apiFailureOf(err).code;
      if (code === 403 || code === 401) {
        if (this.allowed) {
          this.ctx.log.log(
            "warn",
            `pods are not readable in ${this.ctx.namespace} (HTTP ${code}): failure reasons come from Job conditions only and stuck Jobs are not detected early; grant the dispatcher pods [list] for container exit codes and messages`,
          );
        }
        this.allowed = false;
      } else if (!this.ctx.killed()) {
        this.ctx.log.log("warn", `cannot ${what}: ${describeError(err)}`);
      }
      return undefined;
    }
  }
}
