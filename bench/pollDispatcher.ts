// The upstream dispatcher's tracking algorithm, reproduced for the benchmark only (dispatcher-reference.md
// §2.8 HEAD loop, §5.3): refill up to P Jobs, sleep one poll interval, then GET every in-flight Job
// concurrently and free the slots of the finished ones. Node work (labels, Ready waits) is left out, as it is
// for our own dispatcher in the benchmark, so the two differ only in how they notice a finished Job.
import { jobOutcome, type NodeResult } from "../kube/jobStatus";
import { apiFailureOf, sleep, type DispatcherKubeApi } from "../dispatcher/kubeApi";
import { jobName, ownerValue } from "../dispatcher/naming";
import { instantiateJob, type JobManifest } from "../dispatcher/template";

export interface PollRunOptions {
  api: DispatcherKubeApi;
  template: JobManifest;
  namePrefix: string;
  namespace: string;
  parallelism: number;
  /** Real milliseconds between polls (upstream: `--poll-interval-secs`, 5 s of cluster time). */
  pollIntervalMs: number;
  /** Real milliseconds a Job may stay unreadable before its node fails (upstream: 300 s of cluster time). */
  readErrorBudgetMs: number;
  nodePageSize?: number;
}

/** Runs the rollout the upstream way and returns one result per node. */
export async function runPollDispatcher(o: PollRunOptions): Promise<NodeResult[]> {
  const owner = ownerValue(o.namePrefix);
  const nodes: string[] = [];
  let continueToken: string | undefined;
  do {
    const page = await o.api.listNodes({ limit: o.nodePageSize ?? 500, continueToken });
    for (const n of page.items) if (n.metadata?.name) nodes.push(n.metadata.name);
    continueToken = page.continueToken;
  } while (continueToken);
  nodes.sort();

  const results: NodeResult[] = [];
  const queue = [...nodes];
  const inFlight = new Map<string, string>(); // Job name -> node
  const unreadableSince = new Map<string, number>(); // Job name -> first failed read (real ms)
  const parallelism = Math.max(1, Math.min(o.parallelism, nodes.length));
  while (queue.length > 0 || inFlight.size > 0) {
    while (inFlight.size < parallelism && queue.length > 0) {
      const node = queue.shift() as string;
      const name = jobName(owner, node);
      const job = instantiateJob(o.template, {
        jobName: name,
        node,
        ownerValue: owner,
        namespace: o.namespace,
      });
      try {
        await o.api.createJob(o.namespace, job);
        inFlight.set(name, node);
      } catch (err) {
        results.push({ node, outcome: "failed", attempts: 0, reason: "CreateFailed", message: String(err) });
      }
    }
    if (inFlight.size === 0) break;
    await sleep(o.pollIntervalMs);
    const polled = await Promise.all(
      [...inFlight].map(async ([name, node]) => {
        try {
          return { name, node, job: await o.api.getJob(o.namespace, name) };
        } catch (err) {
          return { name, node, job: undefined, err };
        }
      }),
    );
    const now = Date.now();
    for (const { name, node, job, err } of polled) {
      if (!job) {
        // Upstream: a 404 fails the node at once (the Job is gone, e.g. its TTL ran out before this poll);
        // other read errors fail it once the Job was unreadable for the whole read-error budget.
        const since = unreadableSince.get(name) ?? now;
        unreadableSince.set(name, since);
        const gone = apiFailureOf(err).code === 404;
        if (gone || now - since >= o.readErrorBudgetMs) {
          inFlight.delete(name);
          unreadableSince.delete(name);
          results.push({
            node,
            outcome: "failed",
            job: name,
            attempts: 0,
            reason: gone ? "JobDeleted" : "Unreadable",
            message: gone ? `Job ${name} was deleted before it was seen finishing` : String(err),
          });
        }
        continue;
      }
      unreadableSince.delete(name);
      const outcome = jobOutcome(job);
      // Upstream decides on Complete/Failed only (its interpret_status ignores the interim conditions).
      if (!outcome.terminal) continue;
      inFlight.delete(name);
      results.push({
        node,
        outcome: outcome.phase === "succeeded" ? "succeeded" : "failed",
        job: name,
        attempts: 1,
      });
    }
  }
  return results;
}
