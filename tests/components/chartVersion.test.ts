import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { runPlanCli } from "../../components/planCli";
import { checkArgs } from "../../components/validation";
import { renderChart } from "../../chart/render";
import { helmObjects, objectKey } from "../chart/fixtures/objects";
import { tempDir } from "../tempDir";

// `chart.version` selects the renderer and the value checks: `npm run plan` prints every object the chart and its
// hooks create for that version, whole, and refuses what that version's templates refuse (exit 2, naming the key).

async function run(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runPlanCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

type Obj = { kind: string; metadata: { name: string; namespace?: string } };

describe("components: chart.version selects the chart renderer and its checks", () => {
  let dir: string;
  before(() => {
    dir = tempDir("kata-chart-version-");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it("4.1.0 in job mode: plan prints the chart's objects and hooks whole, equal to Helm's render of the same values", async () => {
    // The same values as the Helm fixture "job-defaults" (release kata in kube-system).
    const file = write("a.yaml", "chart: {version: 4.1.0}\ndeploymentMode: job\nreleaseName: kata\n");
    const { code, stdout, stderr } = await run(["--args", file]);
    assert.equal(stderr, "");
    assert.equal(code, 0);
    const out = parse(stdout) as { chartObjects: { version: string; resources: Obj[]; hooks: Obj[] } };
    assert.equal(out.chartObjects.version, "4.1.0");
    const printed = [...out.chartObjects.resources, ...out.chartObjects.hooks];
    const helm = helmObjects("4.1.0", "job-defaults");
    assert.deepEqual(
      printed.map((o) => objectKey(o as never)).sort(),
      helm.map((o) => objectKey(o)).sort(),
      "every object Helm renders, hooks included",
    );
    const templates = printed.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === "kata-deploy-job-templates",
    ) as (Obj & { data: Record<string, string> }) | undefined;
    assert.ok(templates && parse(templates.data["install-job.yaml"]).spec.activeDeadlineSeconds === 3600);
    const install = out.chartObjects.hooks.find(
      (o) => o.metadata.name === "kata-deploy-install-dispatcher",
    ) as unknown as {
      spec: { template: { spec: { containers: { command: string[] }[] } } };
    };
    assert.ok(
      install.spec.template.spec.containers[0].command.includes(
        "--cleanup-job-template=/etc/kata-job/cleanup-job.yaml",
      ),
    );
  });

  it("the default stays 4.0.0 and renders its chart", async () => {
    const { code, stdout } = await run([]);
    assert.equal(code, 0);
    const out = parse(stdout) as { chartObjects: { version: string; resources: Obj[] } };
    assert.equal(out.chartObjects.version, "4.0.0");
    assert.ok(
      out.chartObjects.resources.some((o) => o.kind === "DaemonSet" && o.metadata.name === "kata-deploy"),
    );
  });

  it("4.1.0 refuses the removed selection keys with the chart's hint and a short ttl: exit 2 naming each key", async () => {
    const file = write(
      "bad.yaml",
      [
        "chart: {version: 4.1.0}",
        "deploymentMode: job",
        "job: {nodeSelectorExpressions: [], ttlSecondsAfterFinished: 30}",
        "values: {job: {nodeAffinity: {}, cleanup: {nodeSelectorExpressions: []}}}",
        "",
      ].join("\n"),
    );
    const { code, stdout, stderr } = await run(["--args", file]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(
      stderr,
      /^error: job\.nodeSelectorExpressions: job\.nodeSelectorExpressions has been removed\. .*use `nodeSelector`/m,
    );
    assert.match(stderr, /^error: values\.job\.nodeAffinity: job\.nodeAffinity has been removed/m);
    assert.match(
      stderr,
      /^error: values\.job\.cleanup\.nodeSelectorExpressions: .*renamed to job\.cleanup\.nodeAffinity/m,
    );
    assert.match(
      stderr,
      /^error: job\.ttlSecondsAfterFinished: 30 is too short: chart 4\.1\.0 refuses less than 60/m,
    );
  });

  it("4.1.0's new keys are checked, not warned; under 4.0.0 they are unknown to the chart and warned", () => {
    const values = {
      job: {
        waitForNodesSeconds: 10,
        dispatcherTolerations: [{ operator: "Exists" }],
        activeDeadlineSeconds: 7200,
      },
    };
    const v41 = checkArgs({ chart: { version: "4.1.0" }, deploymentMode: "job", values }, "kata");
    assert.deepEqual(v41.errors, []);
    // Only the honest note that the rollout does not run 4.1.0's dispatcher flags yet.
    assert.deepEqual(
      v41.warnings.map((w) => w.path),
      ["chart.version"],
    );
    assert.match(
      v41.warnings[0].message,
      /still runs the install and cleanup dispatchers with chart 4\.0\.0's flags/,
    );
    const bad = checkArgs(
      { chart: { version: "4.1.0" }, values: { job: { waitForNodesSeconds: -1 } } },
      "kata",
    );
    assert.deepEqual(
      bad.errors.map((e) => e.path),
      ["values.job.waitForNodesSeconds"],
    );
    const v40 = checkArgs({ deploymentMode: "job", values }, "kata");
    assert.deepEqual(
      v40.warnings.map((w) => w.path),
      [
        "values.job.waitForNodesSeconds",
        "values.job.dispatcherTolerations",
        "values.job.activeDeadlineSeconds",
      ],
    );
    // A job-mode nodeSelector selects nodes in 4.1.0 (no "ignored" warning there).
    assert.deepEqual(
      checkArgs(
        { chart: { version: "4.1.0" }, deploymentMode: "job", nodeSelector: { a: "b" } },
        "kata",
      ).warnings.map((w) => w.path),
      ["chart.version"],
    );
  });

  it("with the chart's own dispatcher in job mode, the kata-deploy and dispatcher images are overridden together or not at all", () => {
    const paths = (args: Record<string, unknown>) =>
      checkArgs({ deploymentMode: "job", dispatcherImplementation: "upstream", ...args }, "kata").errors.map(
        (e) => e.path,
      );
    const kata = { image: { reference: "mirror.example/kata-deploy", tag: "4.0.0" } };
    const dispatcher = {
      values: { job: { dispatcherImage: { reference: "mirror.example/dispatcher", tag: "4.0.0" } } },
    };
    assert.deepEqual(paths(kata), ["image"]);
    assert.deepEqual(paths(dispatcher), ["values.job.dispatcherImage"]);
    assert.match(
      checkArgs({ deploymentMode: "job", dispatcherImplementation: "upstream", ...kata }, "kata").errors[0]
        .message,
      /travel as a pair per chart version .*Set job\.dispatcherImage to the same release too, or neither/,
    );
    assert.deepEqual(paths({ ...kata, ...dispatcher }), [], "both overridden: the user's choice");
    assert.deepEqual(paths({}), []);
    // The bundled dispatcher does not use job.dispatcherImage; daemonset mode has no dispatcher.
    assert.deepEqual(checkArgs({ deploymentMode: "job", ...kata }, "kata").errors, []);
    assert.deepEqual(checkArgs({ dispatcherImplementation: "upstream", ...kata }, "kata").errors, []);
  });

  it("renderChart refuses a version it has no renderer for, naming the ones it has", () => {
    assert.throws(
      () => renderChart({}, { name: "kata", namespace: "kube-system" }, { version: "4.2.0" }),
      /chart\.version: "4\.2\.0" has no offline renderer; use one of 4\.0\.0, 4\.1\.0/,
    );
  });
});
