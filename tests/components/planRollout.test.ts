// The plan's dispatcher Jobs with `dispatcherImplementation: upstream` are chart 4.0.0's hook Jobs (the chart
// renderer's `hooks`), minus exactly Helm's three hook annotations — checked key by key, for several value sets.
import assert from "node:assert/strict";
import { renderChart } from "../../chart/render";
import { planRollout } from "../../components/rolloutObjects";
import { DispatcherImplementation, planKataDeploy, type KataDeployArgs } from "../../index";

const HOOK_ANNOTATIONS = ["helm.sh/hook", "helm.sh/hook-weight", "helm.sh/hook-delete-policy"];

const CASES: [string, KataDeployArgs][] = [
  ["defaults", {}],
  ["job.nodes", { job: { nodes: ["worker-a", "worker-b.example"] } }],
  [
    "custom nodeSelector and expressions (install and cleanup)",
    {
      job: {
        nodeSelector: { "node.kubernetes.io/pool": "kata", tier: "gold" },
        nodeSelectorExpressions: [
          { key: "topology.kubernetes.io/zone", operator: "In" as never, values: ["z1", "z2"] },
          { key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist" as never },
        ],
        cleanup: { nodeSelector: { "katacontainers.io/kata-runtime": "true" } },
      },
    },
  ],
  [
    "multiInstallSuffix",
    { env: { multiInstallSuffix: "blue" }, releaseName: "kata-blue", namespace: "kata" },
  ],
  ["parallelism", { job: { parallelism: 37, backoffLimit: 1, ttlSecondsAfterFinished: 900 } }],
];

/** A copy without the three hook annotations, asserting each was there (and dropping an emptied map). */
function minusHookAnnotations(job: unknown, what: string): unknown {
  const copy = JSON.parse(JSON.stringify(job)) as { metadata: { annotations?: Record<string, string> } };
  const annotations = copy.metadata.annotations ?? {};
  for (const key of HOOK_ANNOTATIONS) {
    assert.ok(key in annotations, `${what}: the rendered hook Job has ${key}`);
    delete annotations[key];
  }
  if (Object.keys(annotations).length === 0) delete copy.metadata.annotations;
  return copy;
}

describe("components: plan of the rollout, upstream dispatcher = the chart's hook Jobs minus the hook annotations", () => {
  for (const [name, args] of CASES) {
    it(name, async () => {
      const plan = planKataDeploy(
        { ...args, deploymentMode: "job", dispatcherImplementation: DispatcherImplementation.Upstream },
        "kata-deploy",
      );
      const planned = await planRollout(plan);
      assert.ok(planned);
      assert.equal(planned.dispatcherImplementation, "upstream");
      assert.equal(planned.scriptConfigMap, undefined, "no script ConfigMap for the upstream dispatcher");
      const release = { name: plan.args.releaseName, namespace: plan.args.namespace };
      const hooks = renderChart(plan.values, release).hooks;
      assert.ok(hooks.installDispatcher && hooks.cleanupDispatcher);
      assert.deepEqual(
        planned.installDispatcherJob,
        minusHookAnnotations(hooks.installDispatcher, "install"),
      );
      assert.deepEqual(
        planned.cleanupDispatcherJob,
        minusHookAnnotations(hooks.cleanupDispatcher, "cleanup"),
      );
      // The Role/Binding name the release's dispatcher ServiceAccount, in the release namespace.
      assert.equal(planned.podReaderRole.metadata.namespace, release.namespace);
      assert.equal(
        planned.podReaderRoleBinding.subjects[0].name,
        hooks.installDispatcher.spec.template.spec.serviceAccountName,
      );
    });
  }

  it("daemonset mode plans no rollout objects", async () => {
    assert.equal(await planRollout(planKataDeploy({}, "kata-deploy")), undefined);
  });
});
