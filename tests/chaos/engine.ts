// One chaos run (issue #17 item 7): a whole job-mode rollout (the provider's create, the bundled dispatcher executed by
// kube-sim) under a randomized, seeded schedule of API errors, connection resets, watch drops, dispatcher kills,
// nodes that go NotReady, are deleted or join mid-run, failing nodes and TTL 0. Every invariant is judged from the
// simulator's audit log and store, never from the rollout's own bookkeeping. Used by tests/chaos (short runs) and by
// `npm run bench -- --chaos` (long runs).
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import { decodeResults } from "../../rollout/compact";
import { rolloutProvider } from "../../rollout/provider";
import type { NodeResult, RolloutOutputs, RolloutSummary } from "../../rollout/types";
import {
  CONTROL_PLANE_LABEL,
  type FaultConfig,
  type KubeObject,
  type OutcomeProgram,
  type RunningSimulator,
} from "../../sim";
import { randomFaultConfig, seededRandom } from "../../sim/faults";
import {
  INSTALL_DISPATCHER_JOB,
  INSTALL_OWNER,
  RELEASE,
  perNodeJobsCreated,
  runningDispatcherPod,
  startRelease,
  type Release,
} from "../rollout/simHarness";

/** What happens during one run, drawn from its seed (the same seed draws the same schedule). */
export interface ChaosSchedule {
  seed: number;
  nodes: number;
  parallelism: number;
  faults: FaultConfig;
  ttlZero: boolean;
  /** Kill the running dispatcher pod once this many per-node Jobs exist. */
  killAtJobs: number[];
  /** Node programs: fails every attempt; is deleted mid-install (its pods then fail). */
  failing: string[];
  deleted: string[];
  /**
   * Nodes whose kubelet stops posting while their Job runs, and comes back after `forMs` (real); `forMs` undefined:
   * never (the run must name the stall within the grace period and end, not wait for its timeout).
   */
  notReady: { node: string; forMs?: number }[];
  /** Nodes that join once this many per-node Jobs exist. */
  added: { name: string; atJobs: number }[];
}

export function nodeName(i: number): string {
  return `chaos-${String(i).padStart(5, "0")}`;
}

/** Draws a run's schedule from its seed. */
export function chaosSchedule(seed: number, nodes: number, parallelism: number): ChaosSchedule {
  const random = seededRandom(seed);
  const pick = (n: number, taken: Set<string>): string[] => {
    const out: string[] = [];
    for (let tries = 0; out.length < n && tries < n * 20; tries++) {
      const name = nodeName(Math.floor(random() * nodes));
      if (!taken.has(name)) {
        taken.add(name);
        out.push(name);
      }
    }
    return out;
  };
  const taken = new Set<string>();
  const few = (max: number) => Math.floor(random() * (max + 1));
  const scale = Math.max(1, Math.round(nodes / 100));
  const killAtJobs = Array.from({ length: few(2) }, () => 1 + Math.floor(random() * nodes * 0.8)).sort(
    (a, b) => a - b,
  );
  const schedule: ChaosSchedule = {
    seed,
    nodes,
    parallelism,
    faults: randomFaultConfig(seed),
    ttlZero: random() < 0.5,
    killAtJobs,
    failing: pick(few(3) * scale, taken),
    notReady: pick(few(2), taken).map((node) => ({ node, forMs: 200 + Math.floor(random() * 1500) })),
    deleted: pick(few(2), taken),
    added: Array.from({ length: few(2) }, (_, i) => ({
      name: `chaos-late-${i}`,
      atJobs: 1 + Math.floor(random() * nodes * 0.5),
    })),
  };
  // Drawn last, so the draws above (and every earlier seed's schedule) stay as they were: a third of the runs with an
  // outage keep its node NotReady for good.
  const last = schedule.notReady[schedule.notReady.length - 1];
  if (last && random() < 1 / 3) delete last.forMs;
  return schedule;
}

export interface ChaosReport {
  seed: number;
  schedule: ChaosSchedule;
  /** Every invariant held. */
  passed: boolean;
  /** What broke, each line naming the seed. */
  violations: string[];
  /** Nodes whose finished Job the rollout did not report as it ended (unknown, or another outcome). */
  lost: number;
  /** Nodes with more than one finished Job, or two Jobs at once. */
  duplicates: number;
  /** Most per-node Jobs in flight at once (audit), against the parallelism. */
  peak: number;
  /** The rollout's verdict: create resolved (true) or threw its "failed with results" error (false). */
  rolloutSucceeded: boolean;
  summary?: RolloutSummary;
  /** The rollout's results for nodes that did not succeed (for the report). */
  unsuccessful: NodeResult[];
  kills: number;
  injected: Record<string, number>;
  seconds: number;
}

/** Jobs of the install owner per node, from the audit. */
function auditJobs(sim: RunningSimulator) {
  const out = new Map<string, { jobs: { outcome: string; name: string }[]; maxConcurrentActive: number }>();
  for (const [node, report] of Object.entries(sim.audit.jobsByNode())) {
    const jobs = report.jobs.filter((j) => j.owner === INSTALL_OWNER);
    if (jobs.length) out.set(node, { jobs, maxConcurrentActive: report.maxConcurrentActive });
  }
  return out;
}

/** A copy of an existing worker under a new name: a node joining the cluster. */
function joiningNode(sim: RunningSimulator, like: string, name: string): KubeObject | undefined {
  const model = sim.get("nodes", undefined, like);
  if (!model) return undefined;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name, labels: { ...(model.metadata.labels ?? {}), "kubernetes.io/hostname": name } },
    spec: {},
    status: model.status,
  };
}

/**
 * The rollout's result for a node against what the audit says its Job did. Returns a violation, "lost" (a finished
 * Job reported unknown), or undefined when they agree.
 */
export function judgeNode(
  result: NodeResult,
  truth: { outcome: string } | undefined,
): { violation?: string; lost?: boolean } {
  const o = result.outcome;
  if (!truth) {
    // No Job ever ran there: anything but a success is true ("not installed"), and unknown/NotObserved is honest.
    return o === "succeeded" ? { violation: "reported succeeded, but no Job ever ran there" } : {};
  }
  if (truth.outcome === "succeeded" || truth.outcome === "failed") {
    if (o === truth.outcome) return {};
    if (o === "unknown") return { lost: true };
    return { violation: `reported ${o} (${result.reason ?? ""}), but its Job ${truth.outcome}` };
  }
  // Still running at the end, or deleted before it finished: never a success.
  return o === "succeeded" ? { violation: `reported succeeded, but its Job is ${truth.outcome}` } : {};
}

export interface ChaosRunOptions {
  seed: number;
  nodes: number;
  parallelism: number;
  /** Real seconds the rollout may take (its timeoutSeconds). */
  timeoutSeconds?: number;
  /** Simulated ms per real ms. */
  timeScale?: number;
  /** Called with the simulator before it closes (to look into a failing run). */
  inspect?: (sim: RunningSimulator) => void;
}

/** One seeded chaos run; never throws for a broken invariant (they are in `violations`). */
export async function runChaos(o: ChaosRunOptions): Promise<ChaosReport> {
  const schedule = chaosSchedule(o.seed, o.nodes, o.parallelism);
  const started = Date.now();
  const programs: Record<string, OutcomeProgram> = {};
  for (const n of schedule.failing) programs[n] = { kind: "fail" };
  for (const n of schedule.deleted) programs[n] = { kind: "nodeDeleted" };
  const quiet = process.env.KATA_ROLLOUT_LOG;
  // CHAOS_VERBOSE=1 keeps the rollout's log lines (stderr) when replaying a seed.
  if (!process.env.CHAOS_VERBOSE) process.env.KATA_ROLLOUT_LOG = "quiet";
  const r: Release = await startRelease({
    sim: {
      fleet: {
        nodes: Array.from({ length: o.nodes }, (_, i) => ({
          name: nodeName(i),
          labels: { "kubernetes.io/os": "linux" },
          containerRuntimeVersion: "containerd://2.1.5",
          machineID: nodeName(i),
          outcome: programs[nodeName(i)],
        })),
      },
      seed: o.seed,
      timeScale: o.timeScale ?? 1000,
      jobDurationMs: 200_000,
      faults: schedule.faults,
      // A large fleet's dispatcher may run for minutes on a busy machine: only the rollout's timeout bounds it.
      execute: {
        nodeImages: [BUNDLED_DISPATCHER_IMAGE],
        timeoutMs: ((o.timeoutSeconds ?? 300) + 60) * 1000,
      },
    },
    values: {
      job: { parallelism: o.parallelism, ttlSecondsAfterFinished: schedule.ttlZero ? 0 : 50_000_000 },
    },
    // Stalls (a node gone NotReady under its pod) are named within seconds, as a user would set it for a small fleet.
    rollout: { timeoutSeconds: o.timeoutSeconds ?? 300, stuckGraceSeconds: 5 },
  });
  const violations: string[] = [];
  let kills = 0;
  try {
    // The chaos driver: kills and joins as the run reaches each threshold (per-node Jobs created so far).
    let settled = false;
    const create = rolloutProvider.create(r.inputs).finally(() => (settled = true));
    // Judged below; handled now so a failed rollout is never an unhandled rejection while the driver runs.
    create.catch(() => undefined);
    const pendingKills = [...schedule.killAtJobs];
    const pendingAdds = [...schedule.added];
    const pendingOutages = [...schedule.notReady];
    const recoveries: NodeJS.Timeout[] = [];
    while (!settled && (pendingKills.length || pendingAdds.length || pendingOutages.length)) {
      const made = perNodeJobsCreated(r.sim);
      const byNode = pendingOutages.length ? r.sim.audit.jobsByNode() : {};
      for (const outage of [...pendingOutages]) {
        if (
          !(byNode[outage.node]?.jobs ?? []).some((j) => j.owner === INSTALL_OWNER && j.outcome === "active")
        )
          continue;
        pendingOutages.splice(pendingOutages.indexOf(outage), 1);
        r.sim.setNodeNotReady(outage.node);
        if (outage.forMs !== undefined)
          recoveries.push(setTimeout(() => r.sim.setNodeReady(outage.node), outage.forMs));
      }
      if (pendingKills.length && made >= pendingKills[0]) {
        const pod = runningDispatcherPod(r.sim);
        if (pod) {
          r.sim.delete("pods", RELEASE.namespace, pod);
          kills++;
          pendingKills.shift();
        }
      }
      while (pendingAdds.length && made >= pendingAdds[0].atJobs) {
        const add = pendingAdds.shift();
        const node = add ? joiningNode(r.sim, nodeName(0), add.name) : undefined;
        if (node) r.sim.create("nodes", node);
      }
      await new Promise((resolve) => setTimeout(resolve, o.nodes > 200 ? 100 : 25));
    }
    let outs: RolloutOutputs;
    let rolloutSucceeded = true;
    await create.catch(() => undefined);
    recoveries.forEach(clearTimeout);
    let message = "";
    try {
      outs = (await create).outs;
    } catch (err) {
      const e = err as { properties?: RolloutOutputs; message?: string };
      if (!e.properties) {
        // A rollout that ends without recording results leaves the user nothing to act on: a broken invariant.
        const why = `seed ${o.seed}: the rollout failed without results: ${String(e.message ?? err).slice(0, 300)}`;
        return {
          seed: o.seed,
          schedule,
          passed: false,
          violations: [why],
          lost: 0,
          duplicates: 0,
          peak: r.sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0,
          rolloutSucceeded: false,
          unsuccessful: [],
          kills,
          injected: r.sim.faults.injected(),
          seconds: (Date.now() - started) / 1000,
        };
      }
      outs = e.properties;
      message = e.message ?? "";
      rolloutSucceeded = false;
    }
    const results = decodeResults(outs.results);
    const truth = auditJobs(r.sim);
    const tag = `seed ${o.seed}`;

    // Every selected node (every worker that exists now) and every node that had a Job: exactly one result.
    const seen = new Map<string, number>();
    for (const x of results) seen.set(x.node, (seen.get(x.node) ?? 0) + 1);
    for (const [node, n] of seen) if (n > 1) violations.push(`${tag}: node ${node} has ${n} results`);
    const workers = r.sim
      .list("nodes")
      .filter((n) => n.metadata.labels?.[CONTROL_PLANE_LABEL] === undefined)
      .map((n) => String(n.metadata.name));
    for (const node of [...workers, ...truth.keys()])
      if (!seen.has(node)) violations.push(`${tag}: node ${node} has no result`);

    // Each result equals ground truth; a finished Job reported unknown is lost.
    let lost = 0;
    for (const x of results) {
      const jobs = truth.get(x.node)?.jobs ?? [];
      const judged = judgeNode(x, jobs[jobs.length - 1]);
      if (judged.lost) lost++;
      if (judged.violation) violations.push(`${tag}: node ${x.node} ${judged.violation}`);
    }
    if (lost) violations.push(`${tag}: ${lost} node(s) lost (a finished Job reported unknown)`);

    // Every node the fleet had from the start is dispatched (at most 2 kills: within the replacement's 3 attempts),
    // unless it was deleted or NotReady before its turn; a stall must not end the run before the dispatcher is done.
    const late = new Set(schedule.added.map((a) => a.name));
    for (const x of results) {
      if (x.reason === "NotDispatched" && x.outcome === "failed" && !late.has(x.node))
        violations.push(`${tag}: node ${x.node} was never dispatched: ${(x.message ?? "").slice(0, 200)}`);
    }

    // No pod of a replaced dispatcher is left behind (the Orphan delete of a dead dispatcher orphans its pods).
    const stray = () => {
      const live = r.sim.get("jobs", RELEASE.namespace, INSTALL_DISPATCHER_JOB)?.metadata.uid;
      return r.sim
        .list("pods", {
          namespace: RELEASE.namespace,
          labelSelector: `batch.kubernetes.io/job-name=${INSTALL_DISPATCHER_JOB}`,
        })
        .filter((p) => p.metadata.labels?.["batch.kubernetes.io/controller-uid"] !== live);
    };
    // A killed pod takes a moment to finish terminating.
    await r.sim.waitFor(() => stray().length === 0, 10_000).catch(() => undefined);
    if (stray().length)
      violations.push(
        `${tag}: pods of replaced dispatchers left: ${stray()
          .map((p) => p.metadata.name)
          .join(", ")}`,
      );

    // Nothing hangs: a stall (a node NotReady for good) is named within the grace period, so no run reaches its
    // timeout, which is far longer than any of these runs needs.
    const timedOut = results.filter((x) => x.reason === "Timeout");
    if (timedOut.length)
      violations.push(
        `${tag}: the run reached its timeout (${timedOut.length} node(s) Timeout, e.g. ${timedOut[0].node}: ${timedOut[0].message ?? ""})`,
      );

    // Never installed twice, never two Jobs at once on a node.
    let duplicates = 0;
    for (const [node, t] of truth) {
      const finished = t.jobs.filter((j) => j.outcome === "succeeded" || j.outcome === "failed").length;
      if (finished > 1 || t.maxConcurrentActive > 1) {
        duplicates++;
        violations.push(
          `${tag}: node ${node} ran ${finished} Jobs to the end, at most ${t.maxConcurrentActive} at once`,
        );
      }
    }
    // Never more than P in flight.
    const peak = r.sim.audit.peakActiveJobsByOwner()[INSTALL_OWNER] ?? 0;
    if (peak > o.parallelism) violations.push(`${tag}: peak ${peak} Jobs in flight > P=${o.parallelism}`);

    // A truthful verdict and summary: success exactly when every node succeeded or was rightly left alone; counts
    // equal the results; the message names them.
    const s = outs.summary;
    const count = (k: NodeResult["outcome"]) => results.filter((x) => x.outcome === k).length;
    if (
      s.total !== results.length ||
      s.succeeded !== count("succeeded") ||
      s.failed !== count("failed") ||
      s.skipped !== count("skipped") ||
      (s.unknown ?? 0) !== count("unknown")
    ) {
      violations.push(`${tag}: summary ${JSON.stringify(s)} does not count the results`);
    }
    const allGood = results.every((x) => x.outcome === "succeeded" || x.outcome === "skipped");
    if (rolloutSucceeded !== allGood)
      violations.push(
        `${tag}: the rollout ${rolloutSucceeded ? "succeeded" : "failed"} with ${JSON.stringify(s)}`,
      );
    if (!rolloutSucceeded && !message.includes(`${s.succeeded}/${s.total} nodes succeeded`))
      violations.push(
        `${tag}: the failure message does not state ${s.succeeded}/${s.total}: ${message.slice(0, 200)}`,
      );
    return {
      seed: o.seed,
      schedule,
      passed: violations.length === 0,
      violations,
      lost,
      duplicates,
      peak,
      rolloutSucceeded,
      summary: s,
      unsuccessful: results.filter((x) => x.outcome !== "succeeded"),
      kills,
      injected: r.sim.faults.injected(),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    o.inspect?.(r.sim);
    process.env.KATA_ROLLOUT_LOG = quiet;
    await r.close();
  }
}

/** One line per run: the seed first, so any run can be replayed. */
export function describeRun(x: ChaosReport): string {
  const s = x.schedule;
  const faults = s.faults.rules?.map((r) => r.errorRate ?? r.resetRate ?? 0) ?? [];
  return (
    `seed ${x.seed}: ${x.passed ? "ok" : "FAILED"} in ${x.seconds.toFixed(1)}s; ${x.summary?.succeeded ?? "?"}/` +
    `${x.summary?.total ?? "?"} succeeded, ${x.summary?.failed ?? "?"} failed, ${x.summary?.skipped ?? "?"} skipped, ` +
    `${x.summary?.unknown ?? 0} unknown; lost ${x.lost}, duplicates ${x.duplicates}, peak ${x.peak}/${s.parallelism}; ` +
    `errors ${faults[0]}, resets ${faults[2]}, watch drops every ${s.faults.dropWatchEverySeconds || "-"}s, ` +
    `TTL ${s.ttlZero ? 0 : "long"}, ${x.kills}/${s.killAtJobs.length} kills, ${s.failing.length} failing, ` +
    `${s.notReady.length} NotReady (${s.notReady.filter((n) => n.forMs === undefined).length} for good), ` +
    `${s.deleted.length} deleted, ${s.added.length} added` +
    (x.unsuccessful.length ? `; not succeeded: ${reasonTally(x.unsuccessful)}` : "")
  );
}

/** `BackoffLimitExceeded 3, Stuck 1`: how many nodes did not succeed, by reason. */
function reasonTally(results: readonly NodeResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.reason ?? r.outcome, (counts.get(r.reason ?? r.outcome) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${reason} ${n}`).join(", ");
}
