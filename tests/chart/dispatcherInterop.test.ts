import assert from "node:assert/strict";
import { instantiateJob, parseJobTemplate } from "../../dispatcher/template";
import { jobName, ownerValue } from "../../dispatcher/naming";
import { renderChart } from "../../chart/render";
import type { ConfigMap } from "../../chart/k8s";

// The chain the rollout runs: our rendered ConfigMap → our dispatcher's template reader → one node's Job.
// The per-node Job must carry the chart template unchanged plus the shared contract fields (design.md §3).
describe("chart ↔ dispatcher: the rendered templates are what the dispatcher reads", () => {
  it("both templates parse, and a node's Job keeps the chart's pod and adds the contract fields", () => {
    const rendered = renderChart(
      { deploymentMode: "job", env: { multiInstallSuffix: "dev" } },
      { name: "kata", namespace: "kube-system" },
    );
    const cm = rendered.resources.find(
      (o): o is ConfigMap =>
        o.kind === "ConfigMap" && o.metadata.name === rendered.names.jobTemplatesConfigMap,
    );
    assert.ok(cm && rendered.jobTemplates && rendered.hooks.installDispatcher);
    for (const stage of ["install", "cleanup"] as const) {
      const template = parseJobTemplate(cm.data[`${stage}-job.yaml`], `${stage}-job.yaml`);
      assert.deepEqual(template, rendered.jobTemplates[stage]);
      const prefix =
        stage === "install" ? rendered.names.installNamePrefix : rendered.names.cleanupNamePrefix;
      const owner = ownerValue(prefix);
      const job = instantiateJob(template, {
        jobName: jobName(owner, "Worker-1"),
        node: "Worker-1",
        ownerValue: owner,
        namespace: "kube-system",
      });
      assert.equal(job.spec?.template?.spec?.nodeName, "Worker-1");
      assert.equal(job.metadata?.labels?.["kata-deploy/stage"], stage);
      assert.equal(job.metadata?.labels?.["kata-deploy-job-dispatcher/owner"], owner);
      assert.equal(job.metadata?.annotations?.["kata-deploy-job-dispatcher/node-name"], "Worker-1");
      assert.deepEqual(
        job.spec?.template?.spec?.containers,
        rendered.jobTemplates[stage].spec.template.spec.containers,
      );
    }
    // The install dispatcher hands exactly that prefix to the dispatcher.
    assert.ok(
      rendered.hooks.installDispatcher.spec.template.spec.containers[0].command?.includes(
        "--name-prefix=kata-deploy-dev-install",
      ),
    );
  });
});
