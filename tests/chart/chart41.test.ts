import assert from "node:assert/strict";
import { parse } from "yaml";
import { renderChart } from "../../chart/render";
import type { Job } from "../../chart/k8s";

// Chart 4.1.0's rules that Helm's fixtures cannot show (they render only what succeeds), checked against the
// chart's own messages (kata-deploy-chart.md §7, §10.3 scheduling cases 32-34, 38), and the checksum annotations.
const release = { name: "kata", namespace: "kube-system" };
const render41 = (values: Record<string, unknown>) =>
  renderChart(values, release, { version: "4.1.0", parseYaml: parse });

describe("chart: chart 4.1.0 refusals", () => {
  it("the removed job-mode selection keys fail with the chart's migration hint, in both modes, even when empty", () => {
    for (const deploymentMode of ["job", "daemonset"]) {
      assert.throws(
        () => render41({ deploymentMode, job: { nodeSelector: {} } }),
        /job\.nodeSelector has been removed/,
      );
      assert.throws(
        () => render41({ deploymentMode, job: { nodeSelectorExpressions: [] } }),
        /job\.nodeSelectorExpressions has been removed/,
      );
      assert.throws(
        () => render41({ deploymentMode, job: { nodeAffinity: {} } }),
        /job\.nodeAffinity has been removed/,
      );
      assert.throws(
        () => render41({ deploymentMode, job: { cleanup: { nodeSelectorExpressions: [] } } }),
        /renamed to job\.cleanup\.nodeAffinity/,
      );
    }
  });

  it("a ttl under 60 fails in job mode only; an unknown mode fails", () => {
    assert.throws(
      () => render41({ deploymentMode: "job", job: { ttlSecondsAfterFinished: 30 } }),
      /job\.ttlSecondsAfterFinished is 30, which is too short for the dispatcher to observe/,
    );
    assert.doesNotThrow(() => render41({ deploymentMode: "job", job: { ttlSecondsAfterFinished: 60 } }));
    assert.doesNotThrow(() => render41({ job: { ttlSecondsAfterFinished: 30 } }));
    assert.throws(
      () => render41({ deploymentMode: "bogus" }),
      /deploymentMode must be one of daemonset or job, got "bogus"/,
    );
  });

  it("selection: Gt, matchFields, an empty term list and an empty term fail as the chart does", () => {
    const terms = (nodeSelectorTerms: unknown[]) => ({
      deploymentMode: "job",
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } },
    });
    assert.throws(
      () => render41(terms([{ matchExpressions: [{ key: "cpu", operator: "Gt", values: ["4"] }] }])),
      /unsupported operator "Gt"/,
    );
    assert.throws(
      () => render41(terms([{ matchFields: [{ key: "metadata.name", operator: "In", values: ["a"] }] }])),
      /matchFields cannot be used/,
    );
    assert.throws(() => render41(terms([])), /nodeSelectorTerms must not be empty/);
    assert.throws(() => render41(terms([{}])), /an empty nodeSelectorTerm matches no nodes/);
  });
});

describe("chart: checksum annotations follow what they hash", () => {
  const annotations = (values: Record<string, unknown>) => {
    const r = render41({ deploymentMode: "job", ...values });
    const install = r.hooks.installDispatcher as Job;
    return {
      jobTemplates: install.spec.template.metadata.annotations?.["checksum/job-templates"],
      perNode: r.jobTemplates?.install.spec.template.metadata.annotations ?? {},
    };
  };

  it("the install dispatcher's checksum/job-templates changes exactly when the templates change", () => {
    const base = annotations({});
    assert.match(base.jobTemplates ?? "", /^[0-9a-f]{64}$/);
    assert.equal(annotations({}).jobTemplates, base.jobTemplates);
    assert.equal(
      annotations({ job: { parallelism: 5 } }).jobTemplates,
      base.jobTemplates,
      "not in the templates",
    );
    assert.notEqual(annotations({ job: { backoffLimit: 1 } }).jobTemplates, base.jobTemplates);
    assert.notEqual(annotations({ podLabels: { team: "x" } }).jobTemplates, base.jobTemplates);
  });

  it("per-node pods hash the mounted ConfigMaps; user annotations never override a checksum", () => {
    const dropIn = (text: string) =>
      annotations({
        containerd: { userDropIn: text },
        podAnnotations: { "checksum/containerd-user-dropin": "mine", team: "x" },
      }).perNode;
    const a = dropIn("[a]\n");
    assert.match(a["checksum/containerd-user-dropin"], /^[0-9a-f]{64}$/);
    assert.equal(a.team, "x");
    assert.equal(dropIn("[a]\n")["checksum/containerd-user-dropin"], a["checksum/containerd-user-dropin"]);
    assert.notEqual(dropIn("[b]\n")["checksum/containerd-user-dropin"], a["checksum/containerd-user-dropin"]);
    assert.equal("checksum/custom-configs" in a, false);
  });
});
