// `npm start -- --kubeconfig K --yes --destroy` from outside, against a standalone kube-sim (RBAC enforced, the
// dispatcher really executed): install → uninstall → install, in both modes. Ground truth is the simulator's: the
// objects that appeared during the install (a snapshot before and after), its transitions for the order, and the
// per-node Jobs its audit saw.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { BUNDLED_DISPATCHER_IMAGE } from "../../chart/dispatcherJobs";
import { main } from "../../main/cli";
import type { UninstallSummary } from "../../main/uninstall";
import { startSimulator, type RunningSimulator } from "../../sim";
import type { ResourceName } from "../../sim/types";
import { CLEANUP_OWNER, kataLabelledNodes, perNodeJobsCreated, simJobOutcomes } from "../rollout/simHarness";
import { tempDir } from "../tempDir";

/** Every kind the simulator serves but nodes and events (not objects of a release; the recorder adds events). */
const KINDS: ResourceName[] = [
  "namespaces",
  "configmaps",
  "secrets",
  "serviceaccounts",
  "services",
  "pods",
  "jobs",
  "daemonsets",
  "controllerrevisions",
  "roles",
  "clusterroles",
  "rolebindings",
  "clusterrolebindings",
  "runtimeclasses",
  "leases",
];

const KEEP_ANNOTATION = "helm.sh/resource-policy";
/** The chart's `keep` objects, as its templates mark them (README: removed with the release). */
const KEPT = [
  "serviceaccounts/kata-system/kata-deploy-sa",
  "clusterroles//kata-deploy-role",
  "clusterrolebindings//kata-deploy-rb",
];
const POST_DELETE_JOB = "kata-deploy-rb-cleanup";
const CLEANUP_DISPATCHER = "kata-deploy-cleanup-dispatcher";

/** `resource/namespace/name` of every object of the served kinds. */
function snapshot(sim: RunningSimulator): Set<string> {
  const keys = new Set<string>();
  for (const resource of KINDS)
    for (const o of sim.list(resource))
      keys.add(`${resource}/${o.metadata.namespace ?? ""}/${o.metadata.name}`);
  return keys;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm start -- ARGS` in-process, its output captured. */
async function start(args: string[]): Promise<Run> {
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  const text = { stdout: "", stderr: "" };
  const capture = (into: "stdout" | "stderr") =>
    ((chunk: unknown) => ((text[into] += String(chunk)), true)) as typeof process.stdout.write;
  process.stdout.write = capture("stdout");
  process.stderr.write = capture("stderr");
  try {
    const code = await main(args);
    return { code, ...text };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}

describe("npm start --destroy: install → uninstall → install on a standalone simulator", function () {
  this.timeout(300_000);
  let sim: RunningSimulator;
  const out = tempDir("kata-destroy-");
  const cluster = () => ["--kubeconfig", sim.kubeconfigPath, "--yes"];

  before(async () => {
    sim = await startSimulator({
      authz: true,
      nodes: 24,
      controlPlane: 2,
      seed: 5,
      timeScale: 2000,
      jobDurationMs: 60_000,
      execute: { nodeImages: [BUNDLED_DISPATCHER_IMAGE], timeoutMs: 120_000 },
    });
  });
  after(async () => sim?.close());

  async function install(mode: "job" | "daemonset"): Promise<{ kataNodes: string[]; applied: string[] }> {
    const before = snapshot(sim);
    const run = await start([...cluster(), "--mode", mode, "--json", "--out", out]);
    assert.equal(run.code, 0, run.stderr);
    const outputs = JSON.parse(run.stdout) as { kataNodes: string[]; summary: { failed: number } };
    assert.equal(outputs.kataNodes.length, 22, "every worker (24 nodes less 2 control-plane nodes)");
    return { kataNodes: outputs.kataNodes, applied: [...snapshot(sim)].filter((k) => !before.has(k)) };
  }

  async function destroy(mode: "job" | "daemonset") {
    const mark = sim.audit.transitions().length;
    const run = await start([...cluster(), "--mode", mode, "--json", "--destroy"]);
    const summary = JSON.parse(run.stdout) as UninstallSummary;
    return { run, summary, transitions: sim.audit.transitions().slice(mark) };
  }

  /** Transition index of `kind` for an object `resource/namespace/name`. */
  function indexIn(
    t: ReturnType<RunningSimulator["audit"]["transitions"]>,
    kind: string,
    key: string,
  ): number {
    const [resource, namespace, name] = key.split("/");
    return t.findIndex(
      (x) =>
        x.kind === kind && x.resource === resource && (x.namespace ?? "") === namespace && x.name === name,
    );
  }

  /** The order `pulumi destroy` follows, read from the simulator's transitions. */
  function assertOrder(
    t: ReturnType<RunningSimulator["audit"]["transitions"]>,
    applied: string[],
    mode: "job" | "daemonset",
  ): void {
    const byDemo = applied.filter(
      (k) =>
        /^(configmaps|serviceaccounts|daemonsets|roles|clusterroles|rolebindings|clusterrolebindings|runtimeclasses)\//.test(
          k,
        ) &&
        !k.startsWith("serviceaccounts/kata-system/default") &&
        !KEPT.includes(k),
    );
    assert.ok(byDemo.length > 5, byDemo.join(", "));
    const deletions = byDemo.map((k) => [k, indexIn(t, "deleted", k)] as const);
    for (const [k, i] of deletions) assert.ok(i >= 0, `${k} deleted`);
    const firstDeletion = Math.min(...deletions.map(([, i]) => i));
    const lastDeletion = Math.max(...deletions.map(([, i]) => i));
    const hook = indexIn(t, "created", `jobs/kata-system/${POST_DELETE_JOB}`);
    const hookGone = indexIn(t, "deleted", `jobs/kata-system/${POST_DELETE_JOB}`);
    assert.ok(hook > lastDeletion, "the post-delete hook Job after the release's objects are deleted");
    assert.ok(hookGone > hook, "hook-succeeded: the post-delete Job is deleted");
    for (const k of KEPT)
      assert.ok(indexIn(t, "deleted", k) > hookGone, `${k} removed after the post-delete hooks`);
    const namespace = indexIn(t, "deleted", "namespaces//kata-system");
    assert.ok(namespace > Math.max(...KEPT.map((k) => indexIn(t, "deleted", k))), "the namespace last");
    if (mode === "job") {
      const cleanupDone = indexIn(t, "jobComplete", `jobs/kata-system/${CLEANUP_DISPATCHER}`);
      assert.ok(
        cleanupDone >= 0 && cleanupDone < firstDeletion,
        "the cleanup dispatcher ends before any deletion",
      );
    }
  }

  function leftovers(applied: string[]): string[] {
    const now = snapshot(sim);
    return applied.filter((k) => now.has(k));
  }

  it("job mode: cleanup on the installed nodes, the chart's objects, post-delete, kept objects, namespace; nothing left; installs again", async () => {
    const first = await install("job");
    for (const k of KEPT) {
      const [resource, namespace, name] = k.split("/") as [ResourceName, string, string];
      const live = sim.get(resource, namespace || undefined, name);
      assert.equal(
        live?.metadata.annotations?.[KEEP_ANNOTATION],
        "keep",
        `${k} is a kept object of the chart`,
      );
    }
    // The label kata-deploy's label stage sets on each node it installs: what the cleanup's default selection picks.
    assert.deepEqual(kataLabelledNodes(sim), [...first.kataNodes].sort());

    // The same install with only the parallelism changed: the plan says so, and no per-node Job is created.
    const jobsAfterFirst = perNodeJobsCreated(sim);
    const paced = await start([...cluster(), "--parallelism", "7", "--json", "--out", out]);
    assert.equal(paced.code, 0, paced.stderr);
    assert.match(
      paced.stderr,
      /every one of the 22 selected node\(s\) carries this install; the next run installs none/,
    );
    assert.equal(perNodeJobsCreated(sim), jobsAfterFirst, "no per-node Job for a parallelism change");
    assert.equal((JSON.parse(paced.stdout) as { kataNodes: string[] }).kataNodes.length, 22);

    const { run, summary, transitions } = await destroy("job");
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(summary.cleanup, { nodes: 22, cleaned: 22, failed: 0 });
    const cleaned = simJobOutcomes(sim, CLEANUP_OWNER);
    assert.deepEqual(
      [...cleaned.keys()].sort(),
      [...first.kataNodes].sort(),
      "the cleanup ran on the installed nodes",
    );
    for (const [node, o] of cleaned) assert.equal(o.outcome, "succeeded", node);
    assertOrder(transitions, first.applied, "job");
    assert.deepEqual(summary.stillPresent, []);
    assert.deepEqual(kataLabelledNodes(sim), [], "the cleanup's unlabel stage removed the label");
    assert.deepEqual(summary.keptRemoved.length, 3);
    assert.equal(summary.namespaceDeleted, true);
    assert.deepEqual(leftovers(first.applied), [], "no object that appeared with the install is left");
    const kinds = new Set(first.applied.map((k) => k.split("/")[0]));
    for (const kind of [
      "namespaces",
      "configmaps",
      "serviceaccounts",
      "roles",
      "rolebindings",
      "clusterroles",
      "clusterrolebindings",
      "runtimeclasses",
      "jobs",
      "pods",
    ])
      assert.ok(kinds.has(kind), `the install applied ${kind}: ${[...kinds].join(", ")}`);

    // The next install on the same cluster: nothing collides, and every node is installed again.
    const jobsBefore = perNodeJobsCreated(sim);
    const again = await install("job");
    assert.equal(
      perNodeJobsCreated(sim) - jobsBefore,
      again.kataNodes.length,
      "one install Job per node again",
    );

    // A node whose cleanup fails: exit 1 naming the step and the node; the release stays, as a destroy stops there.
    const broken = again.kataNodes[3];
    // It fails at the cleanup's first stage, so its label stays: the next cleanup selects it again (and only it).
    sim.setOutcome(broken, {
      kind: "fail",
      failure: { container: "unlabel", message: "cannot reach the API server" },
    });
    const failed = await destroy("job");
    assert.equal(failed.run.code, 1, failed.run.stderr);
    assert.equal(failed.summary.failure?.step, "cleanup");
    assert.ok(failed.summary.failure?.message.includes(broken), failed.summary.failure?.message);
    assert.match(failed.run.stderr, /the uninstall failed at the cleanup step/);
    assert.deepEqual(failed.summary.cleanup, { nodes: 22, cleaned: 21, failed: 1 });
    assert.deepEqual(failed.summary.deleted, []);
    assert.deepEqual(
      kataLabelledNodes(sim),
      [broken],
      "the cleaned nodes lost the label, the broken one kept it",
    );
    const release = again.applied.filter((k) => !/^(jobs|pods)\//.test(k));
    assert.deepEqual(leftovers(release), release, "every object of the release is still there");
    assert.ok((failed.summary.stillPresent ?? []).includes("Namespace kata-system"));

    // Fixed, the uninstall goes through; then nothing of the release is found: nothing to do, exit 0.
    sim.setOutcome(broken, { kind: "succeed" });
    // This time as a person reads it: the progress line of the cleanup, then the summary.
    const cleanAgain = await start([...cluster(), "--destroy"]);
    assert.equal(cleanAgain.code, 0, cleanAgain.stderr);
    assert.match(
      cleanAgain.stderr,
      /1\/1 nodes done, 0 failed, 0 in flight/,
      "the cleanup's progress line: the one node still labelled",
    );
    for (const line of [
      "kata-deploy uninstall of release kata-system/kata-deploy (job mode)",
      "cleanup dispatcher: 1 of 1 nodes cleaned, 0 failed",
      "removed after the post-delete hooks, kept by the chart: ServiceAccount kata-system/kata-deploy-sa, ClusterRole kata-deploy-role, ClusterRoleBinding kata-deploy-rb",
      "deleted namespace kata-system",
      "nothing the install applies is left: each object answers 404",
    ])
      assert.ok(cleanAgain.stdout.includes(line), `${line}\n${cleanAgain.stdout}`);
    assert.match(cleanAgain.stdout, /deleted \d+ objects of the release\n/);
    assert.deepEqual(leftovers(again.applied), []);
    const nothing = await destroy("job");
    assert.equal(nothing.run.code, 0, nothing.run.stderr);
    assert.equal(nothing.summary.nothingFound, true);
    assert.deepEqual(
      nothing.transitions.filter((x) => x.kind !== "updated"),
      [],
      "nothing created or deleted",
    );
  });

  it("a post-delete hook that fails: exit 1 at that step, the kept objects stay; the next --destroy resumes there", async () => {
    const args = path.join(out, "no-cleanup.yaml");
    fs.writeFileSync(args, "rollout:\n  cleanupOnDestroy: false\n");
    const installed = await start([...cluster(), "--args", args, "--json", "--out", out]);
    assert.equal(installed.code, 0, installed.stderr);
    // Every node fails what runs on it now: the chart's post-delete Job is the only pod of this uninstall.
    const nodes = sim.list("nodes").map((n) => String(n.metadata.name));
    for (const n of nodes) sim.setOutcome(n, { kind: "fail" });
    const failed = await start([...cluster(), "--args", args, "--json", "--destroy"]);
    const summary = JSON.parse(failed.stdout) as UninstallSummary;
    assert.equal(failed.code, 1, failed.stderr);
    assert.equal(summary.failure?.step, "post-delete");
    assert.match(summary.failure?.message ?? "", /post-delete hook .*kata-deploy-rb-cleanup failed/);
    assert.deepEqual(summary.cleanup, {
      note: "skipped (rollout.cleanupOnDestroy is off): the nodes keep Kata",
    });
    assert.ok(summary.deleted.length > 5);
    const still = new Set(summary.stillPresent);
    for (const k of [
      "ServiceAccount kata-system/kata-deploy-sa",
      "ClusterRole kata-deploy-role",
      "ClusterRoleBinding kata-deploy-rb",
    ])
      assert.ok(still.has(k), `${k} stays until a destroy succeeds`);
    assert.deepEqual(summary.keptRemoved, []);

    for (const n of nodes) sim.setOutcome(n, { kind: "succeed" });
    const mark = sim.audit.transitions().length;
    const resumed = await start([...cluster(), "--args", args, "--json", "--destroy"]);
    const after = JSON.parse(resumed.stdout) as UninstallSummary;
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(after.cleanup, undefined, "no rollout delete: the release's objects were gone already");
    assert.deepEqual(after.deleted, []);
    assert.equal(after.keptRemoved.length, 3);
    assert.deepEqual(after.stillPresent, []);
    const t = sim.audit.transitions().slice(mark);
    assert.ok(
      indexIn(t, "created", `jobs/kata-system/${POST_DELETE_JOB}`) >= 0,
      "the post-delete hook ran again",
    );
    assert.equal(
      t.some((x) => x.kind === "created" && x.name === CLEANUP_DISPATCHER),
      false,
    );
  });

  it("daemonset mode: the chart's objects (the DaemonSet and its pods), post-delete, kept objects, namespace; installs again", async () => {
    const first = await install("daemonset");
    const { run, summary, transitions } = await destroy("daemonset");
    assert.equal(run.code, 0, run.stderr);
    assert.ok(summary.cleanup && "note" in summary.cleanup, JSON.stringify(summary.cleanup));
    assert.ok(first.applied.some((k) => k.startsWith("daemonsets/")));
    assertOrder(transitions, first.applied, "daemonset");
    assert.deepEqual(summary.stillPresent, []);
    assert.deepEqual(leftovers(first.applied), [], "no object that appeared with the install is left");
    const again = await install("daemonset");
    assert.deepEqual(again.kataNodes.sort(), first.kataNodes.sort());
  });
});
