// The component's hooks come from real Helm through the kubernetes provider's `kubernetes:helm:template` invoke. Under
// Pulumi's mock runtime the invoke answers with a recorded Helm 4 render of chart 4.0.0 (tests/chart/fixtures: `helm
// template kata <chart> --namespace kube-system` with deploymentMode=job, hooks included); the test checks the invoke
// asks for the same chart, version, values, release and namespace as the helm.v4.Chart, that the rollout resources
// carry exactly Helm's hook objects, and then runs the post-delete phase from those inputs against kube-sim.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { chartDefaults, mergeValues } from "../../chart/defaults";
import { DeploymentMode, KataDeploy } from "../../components";
import { HELM_TEMPLATE_TOKEN, hookObjects } from "../../components/helmTemplate";
import { splitHooks, phaseHooks } from "../../kube/helmHooks";
import { rolloutProvider } from "../../rollout/provider";
import type { RolloutInputs, RolloutOutputs } from "../../rollout/types";
import { startSimulator, type RunningSimulator } from "../../sim";
import { helmObjects } from "../chart/fixtures/objects";

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const ROLLOUT_TYPE = "pulumi-nodejs:dynamic/kata-deploy:KataRollout";
const CHART_TYPE = "kubernetes:helm.sh/v4:Chart";

/** Drops the mock runtime's secret wrappers. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (SIG_KEY in o) return plain(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

describe("components: the chart's hooks rendered by Helm through the kubernetes:helm:template invoke", function () {
  this.timeout(300_000);
  let sim: RunningSimulator;
  const invokes: Record<string, unknown>[] = [];
  const registered: { type: string; name: string; inputs: Record<string, unknown> }[] = [];
  const recorded = helmObjects("4.0.0", "job-defaults");

  before(async () => {
    process.env.KATA_ROLLOUT_LOG = process.env.KATA_ROLLOUT_LOG ?? "quiet";
    sim = await startSimulator({ nodes: 3, seed: 11, timeScale: 600, jobDurationMs: 30_000 });
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          registered.push({ type: a.type, name: a.name, inputs: a.inputs as Record<string, unknown> });
          return { id: a.custom ? `${a.name}-id` : undefined, state: a.inputs };
        },
        call: (a) => {
          if (a.token !== HELM_TEMPLATE_TOKEN) return a.inputs;
          const opts = JSON.parse(String(a.inputs.jsonOpts)) as Record<string, unknown>;
          invokes.push(opts);
          // The recorded render is Helm's answer for exactly these values: anything else would be a wrong answer.
          assert.deepEqual(
            mergeValues(chartDefaults(), opts.values as Record<string, unknown>),
            mergeValues(chartDefaults(), { deploymentMode: "job" }),
            "the invoke renders the values of the recorded case",
          );
          assert.equal(opts.release_name, "kata");
          assert.equal(opts.namespace, "kube-system");
          return { result: recorded };
        },
      },
      "kata-deploy",
      "dev",
    );
  });
  after(async () => sim?.close());

  it("asks with the chart's reference, version, values, release and namespace; the rollouts carry Helm's hooks; post-delete runs on kube-sim in Helm's order", async () => {
    const kata = new KataDeploy("kata", {
      deploymentMode: DeploymentMode.Job,
      namespace: "kube-system",
      releaseName: "kata",
      kubeconfig: fs.readFileSync(sim.kubeconfigPath, "utf8"),
      rollout: { timeoutSeconds: 120 },
    });
    await new Promise((resolve) => kata.runId.apply(resolve));

    assert.equal(invokes.length, 1, "one render through the provider");
    const chart = registered.find((r) => r.type === CHART_TYPE)!;
    const asked = invokes[0];
    assert.equal(asked.chart, chart.inputs.chart, "same chart reference as helm.v4.Chart");
    assert.equal(asked.version, chart.inputs.version, "same version");
    assert.deepEqual(asked.values, chart.inputs.values, "same values");
    assert.equal(asked.release_name, chart.inputs.name, "same release name");
    assert.equal(asked.namespace, chart.inputs.namespace, "same namespace");

    const rollouts = registered.filter((r) => r.type === ROLLOUT_TYPE);
    assert.equal(rollouts.length, 2);
    const helmHooks = hookObjects(recorded);
    assert.equal(helmHooks.length, 6);
    for (const r of rollouts)
      assert.deepEqual(r.inputs.hooks, helmHooks, `${r.name}: the hooks are Helm's render, whole`);
    const before = plain(rollouts.find((r) => r.inputs.chartSide === "before")!.inputs) as RolloutInputs;
    // The release's objects are Helm's too: every non-hook object of the render, its keep ones marked.
    assert.equal(before.releaseObjects?.length, recorded.length - helmHooks.length);
    assert.deepEqual(
      before.releaseObjects?.filter((r) => r.keep).map((r) => `${r.kind}/${r.name}`),
      ["ServiceAccount/kata-deploy-sa", "ClusterRole/kata-deploy-role", "ClusterRoleBinding/kata-deploy-rb"],
    );
    assert.deepEqual(
      phaseHooks(splitHooks(before.hooks ?? []).hooks, "pre-delete").map((h) => h.name),
      ["kata-deploy-cleanup-dispatcher"],
    );

    // Destroy's last step from these inputs against the cluster: the post-delete hooks of Helm's render.
    const outs: RolloutOutputs = {
      ...before,
      results: "",
      summary: { total: 0, succeeded: 0, failed: 0, skipped: 0, durationSeconds: 0 },
      runId: "",
      lastRunKey: before.runKey,
    };
    await rolloutProvider.delete("kube-system/kata-deploy#before-chart", outs);
    // Ground truth: the objects the simulator saw created, in order (pods of the Job aside).
    const created = sim.audit
      .transitions()
      .filter((t) => t.kind === "created" && t.resource !== "pods" && /cleanup/.test(t.name))
      .map((t) => `${t.resource}/${t.name}`);
    assert.deepEqual(created, [
      "clusterrolebindings/kata-deploy-cleanup-rb",
      "clusterroles/kata-deploy-cleanup-role",
      "serviceaccounts/kata-deploy-sa-cleanup",
      "jobs/kata-deploy-rb-cleanup",
    ]);
    const jobEnded = sim.audit
      .transitions("jobs")
      .filter((t) => t.name === "kata-deploy-rb-cleanup")
      .map((t) => t.kind);
    assert.deepEqual([jobEnded[0], jobEnded[jobEnded.length - 1]], ["created", "deleted"]);
    assert.ok(jobEnded.includes("jobComplete"), "the Job ran to completion before hook-succeeded deleted it");
    assert.equal(sim.get("serviceaccounts", "kube-system", "kata-deploy-sa-cleanup"), undefined);
  });

  it("a preview whose provider cannot render yet (no result) shows the offline render's hooks instead of failing", async () => {
    const seen: { type: string; inputs: Record<string, unknown> }[] = [];
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          seen.push({ type: a.type, inputs: a.inputs as Record<string, unknown> });
          return { id: a.custom ? `${a.name}-id` : undefined, state: a.inputs };
        },
        call: () => ({}),
      },
      "kata-deploy",
      "dev",
      true,
    );
    new KataDeploy("kata-preview", {
      deploymentMode: DeploymentMode.Job,
      namespace: "kube-system",
      releaseName: "kata",
      kubeconfig: fs.readFileSync(sim.kubeconfigPath, "utf8"),
    });
    const deadline = Date.now() + 60_000;
    while (seen.filter((r) => r.type === ROLLOUT_TYPE).length < 2 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const rollouts = seen.filter((r) => r.type === ROLLOUT_TYPE);
    assert.equal(rollouts.length, 2);
    const names = (r: { inputs: Record<string, unknown> }) =>
      (r.inputs.hooks as { kind: string; metadata: { name: string } }[])
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort();
    for (const r of rollouts)
      assert.deepEqual(
        names(r),
        hookObjects(recorded)
          .map((o) => `${o.kind}/${o.metadata.name}`)
          .sort(),
      );
  });
});
