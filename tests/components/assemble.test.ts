// One assembly per plan (components/assemble.ts): the rollout's inputs carry the node selection as data, and it
// is exactly what the dispatcher Job's command line says (the chart writes the flags; ground truth: the Job).
import assert from "node:assert/strict";
import { assemble, rolloutInputsOf } from "../../components/assemble";
import { planKataDeploy } from "../../components/plan";
import { selectionArgs } from "../../kube/nodeSelection";

const CONNECTION = { server: "https://127.0.0.1:6443", token: "t" };
const SELECTIONS: Record<string, unknown>[] = [
  {},
  { nodes: ["w-b", "w-a"] },
  { nodeSelector: { pool: "kata" }, cleanup: { nodes: ["x"] } },
  { nodeSelectorExpressions: [{ key: "zone", operator: "In", values: ["z1", "z2"] }] },
];

describe("components: assemble(plan)", () => {
  for (const job of SELECTIONS) {
    it(`selection as data equals the dispatcher Jobs' flags: ${JSON.stringify(job)}`, () => {
      const plan = planKataDeploy({ deploymentMode: "job", dispatcherImplementation: "upstream", job });
      const assembly = assemble(plan);
      const inputs = rolloutInputsOf(plan, assembly, CONNECTION);
      for (const stage of ["install", "cleanup"] as const) {
        const command = assembly.dispatcherJobs?.[stage].spec.template.spec.containers[0].command ?? [];
        const flags = command.filter((a) => a.startsWith("--nodes=") || a.startsWith("--node-selector="));
        const selection = inputs[stage]?.selection ?? {};
        // The rollout keeps names sorted; the chart writes them as given.
        const sortNames = (f: string) =>
          f.startsWith("--nodes=") ? `--nodes=${f.slice(8).split(",").sort().join(",")}` : f;
        assert.deepEqual(selectionArgs(selection), flags.map(sortNames), stage);
        assert.deepEqual(inputs[stage]?.job, assembly.dispatcherJobs?.[stage], "the Job is the assembly's");
      }
    });
  }

  it("applies, in order, the namespace, the chart's objects and the dispatcher's extras", () => {
    const plan = planKataDeploy({
      deploymentMode: "job",
      dispatcherImplementation: "upstream",
      createNamespace: true,
      namespace: "kata",
    });
    const a = assemble(plan);
    assert.equal(a.objects[0].kind, "Namespace");
    assert.deepEqual(a.objects.slice(1, 1 + a.rendered.resources.length), a.rendered.resources);
    assert.deepEqual(
      a.objects.slice(-2).map((o) => o.kind),
      ["Role", "RoleBinding"],
    );
  });
});
