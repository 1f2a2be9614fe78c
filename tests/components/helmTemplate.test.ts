import assert from "node:assert/strict";
import {
  helmTemplateJsonOpts,
  hookObjects,
  templateResult,
  HELM_TEMPLATE_TOKEN,
} from "../../components/helmTemplate";
import { releaseObjectRefs, renderedHooks } from "../../rollout/inputs";
import { renderChart } from "../../chart/render";
import { helmObjects } from "../chart/fixtures/objects";

describe("components/helmTemplate: the helm template invoke's request and answer", () => {
  const base = { values: { deploymentMode: "job" }, releaseName: "kata", namespace: "kata-system" };

  it("jsonOpts as helm.v3.Chart writes them: OCI, http(s) repository, local path", () => {
    const table: [Parameters<typeof helmTemplateJsonOpts>[0]["chart"], Record<string, unknown>][] = [
      [
        { reference: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy", version: "4.0.0" },
        { chart: "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy", version: "4.0.0" },
      ],
      [
        { reference: "kata-deploy", version: "4.1.0", repository: "https://charts.example/kata" },
        { chart: "kata-deploy", version: "4.1.0", fetch_opts: { repo: "https://charts.example/kata" } },
      ],
      [{ reference: "/charts/kata-deploy", path: "/charts/kata-deploy" }, { path: "/charts/kata-deploy" }],
    ];
    for (const [chart, source] of table) {
      assert.deepEqual(JSON.parse(helmTemplateJsonOpts({ ...base, chart })), {
        ...source,
        values: base.values,
        namespace: "kata-system",
        release_name: "kata",
      });
    }
  });

  it("keeps exactly the objects with a known hook event; refuses an answer without a result list", () => {
    const rendered = helmObjects("4.0.0", "job-defaults");
    const hooks = hookObjects(rendered);
    assert.deepEqual(
      hooks.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        "ServiceAccount/kata-deploy-sa-cleanup",
        "ClusterRole/kata-deploy-cleanup-role",
        "ClusterRoleBinding/kata-deploy-cleanup-rb",
        "Job/kata-deploy-rb-cleanup",
        "Job/kata-deploy-cleanup-dispatcher",
        "Job/kata-deploy-install-dispatcher",
      ],
    );
    const odd = { ...hooks[0], metadata: { ...hooks[0].metadata, annotations: { "helm.sh/hook": "bogus" } } };
    assert.deepEqual(hookObjects([odd]), []);
    assert.equal(templateResult({ result: rendered }).length, rendered.length);
    assert.throws(() => templateResult({ jsonOpts: "{}" }), new RegExp(`${HELM_TEMPLATE_TOKEN}: expected`));
  });

  it("the offline render's hooks and release objects are Helm's (same names, policies; keep marked)", () => {
    const rendered = renderChart({ deploymentMode: "job" }, { name: "kata", namespace: "kube-system" });
    const helm = helmObjects("4.0.0", "job-defaults");
    const key = (o: { kind: string; metadata: { name?: string; annotations?: Record<string, string> } }) =>
      `${o.kind}/${o.metadata.name} ${JSON.stringify(
        Object.entries(o.metadata.annotations ?? {}).filter(([k]) => k.startsWith("helm.sh/")),
      )}`;
    assert.deepEqual(renderedHooks(rendered).map(key).sort(), hookObjects(helm).map(key).sort());
    const refs = releaseObjectRefs(rendered.resources);
    assert.deepEqual(
      refs.filter((r) => r.keep).map((r) => `${r.kind}/${r.name}`),
      ["ServiceAccount/kata-deploy-sa", "ClusterRole/kata-deploy-role", "ClusterRoleBinding/kata-deploy-rb"],
    );
    assert.equal(refs.length, rendered.resources.length);
  });
});
