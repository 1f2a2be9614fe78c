// Way 3 of 3: the standalone program (Pulumi.yaml + program.ts) reads the args from stack config, validated
// by the component's schema, and exports the component's outputs as stack outputs.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { argsFromStackConfig, kataDeployStack } from "../../components/stackProgram";
import { KataDeployArgsError, planKataDeploy } from "../../index";
import {
  COMPONENT_OUTPUTS,
  MockRecorder,
  ROLLOUT_OUTCOMES,
  ROLLOUT_RUN_ID,
  ROLLOUT_SUMMARY,
  value,
} from "./mockRuntime";

const ROOT = path.resolve(__dirname, "../..");
const CHART = "kubernetes:helm.sh/v4:Chart";

describe("components: standalone program from stack config", () => {
  const mocks = new MockRecorder();
  before(() => mocks.install(false, "kata-deploy", "dev"));
  after(() => mocks.uninstall());
  afterEach(() => pulumi.runtime.setAllConfig({}));

  it("Pulumi.yaml names the program, project kata-deploy, nodejs runtime", () => {
    const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
      name: string;
      main: string;
      runtime: { name: string };
    };
    assert.equal(project.name, "kata-deploy");
    assert.equal(project.runtime.name, "nodejs");
    assert.equal(project.main, "program.ts");
    assert.ok(fs.existsSync(path.join(ROOT, project.main)));
  });

  it("one config key per argument: strings raw, everything else JSON", () => {
    const { args, errors } = argsFromStackConfig(
      {
        "kata-deploy:deploymentMode": "job",
        "kata-deploy:releaseName": "123",
        "kata-deploy:createNamespace": "true",
        "kata-deploy:job": '{"parallelism":5,"nodes":["a"]}',
        "kata-deploy:dispatcherImplementation": "upstream",
        "kata-deploy:kubeconfig": "apiVersion: v1\nkind: Config\n",
        "kata-deploy:rollout": '{"timeoutSeconds":600,"healDrift":false}',
        "kubernetes:context": "kind",
      },
      "kata-deploy",
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(args, {
      deploymentMode: "job",
      releaseName: "123",
      createNamespace: true,
      job: { parallelism: 5, nodes: ["a"] },
      dispatcherImplementation: "upstream",
      kubeconfig: "apiVersion: v1\nkind: Config\n",
      rollout: { timeoutSeconds: 600, healDrift: false },
    });
    const bad = argsFromStackConfig({ "kata-deploy:jobs": "{}", "kata-deploy:debug": "yes" }, "kata-deploy");
    assert.deepEqual(
      bad.errors.map((e) => e.path),
      ["kata-deploy:jobs", "kata-deploy:debug"],
    );
    assert.match(bad.errors[0].message, /is not a KataDeploy argument; valid keys: kata-deploy:namespace/);
    assert.match(bad.errors[1].message, /not a boolean \(true or false\)/);
  });

  it("deploys from stack config and exports the component's outputs", async () => {
    pulumi.runtime.setAllConfig({
      "kata-deploy:deploymentMode": "job",
      "kata-deploy:namespace": "kata",
      "kata-deploy:job": JSON.stringify({ parallelism: 4, nodeSelector: { pool: "kata" } }),
      "kata-deploy:values": JSON.stringify({ monitor: { enabled: true } }),
    });
    const outputs = kataDeployStack("kdt-program");
    assert.deepEqual(
      {
        mode: await value(outputs.mode),
        namespace: await value(outputs.namespace),
        releaseName: await value(outputs.releaseName),
        chartVersion: await value(outputs.chartVersion),
      },
      { mode: "job", namespace: "kata", releaseName: "kdt-program", chartVersion: "4.0.0" },
    );
    // The rollout's outputs (what the mock's KataRollout returned) are stack outputs too.
    assert.deepEqual(await value(outputs.kataNodes), ["worker-1", "worker-2"]);
    assert.deepEqual(await value(outputs.nodeOutcomes), ROLLOUT_OUTCOMES);
    assert.deepEqual(await value(outputs.summary), ROLLOUT_SUMMARY);
    assert.equal(await value(outputs.runId), ROLLOUT_RUN_ID);
    await mocks.until(() => mocks.named("kdt-program").length === 2);
    const chart = mocks.one(CHART, "kdt-program");
    assert.equal(chart.inputs.namespace, "kata");
    assert.deepEqual(chart.inputs.values, {
      monitor: { enabled: true },
      deploymentMode: "job",
      job: { parallelism: 4, nodeSelector: { pool: "kata" } },
    });
  });

  it("invalid stack config: every problem named by its config key, nothing registered", async () => {
    pulumi.runtime.setAllConfig({
      "kata-deploy:deploymentMode": "Job",
      "kata-deploy:job": JSON.stringify({ parallelism: 0 }),
      "kata-deploy:paralellism": "3",
    });
    let thrown: unknown;
    try {
      kataDeployStack("kdt-program-bad");
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof KataDeployArgsError);
    assert.deepEqual(thrown.issues.map((i) => i.path).sort(), [
      "kata-deploy:deploymentMode",
      "kata-deploy:job.parallelism",
      "kata-deploy:paralellism",
    ]);
    assert.match(thrown.message, /^stack config: 3 invalid arguments/);
    assert.equal(mocks.named("kdt-program-bad").length, 0);
  });

  it("program.ts itself: its module exports are the stack outputs", async () => {
    pulumi.runtime.setAllConfig({ "kata-deploy:releaseName": "kata-from-program" });
    const programPath = require.resolve("../../program");
    delete require.cache[programPath];
    // `export =` in program.ts: the module object itself holds the outputs, as Pulumi's require sees it.
    const outputs = ((await import(programPath)) as { default: Record<string, pulumi.Output<string>> })
      .default;
    delete require.cache[programPath];
    assert.deepEqual(Object.keys(outputs).sort(), COMPONENT_OUTPUTS);
    assert.deepEqual(await value(outputs.kataNodes as pulumi.Output<unknown>), ["worker-1", "worker-2"]);
    assert.equal(await value(outputs.releaseName), "kata-from-program");
    assert.equal(await value(outputs.mode), "daemonset");
    await mocks.until(() => mocks.named("kata-deploy").some((r) => r.type === CHART));
  });

  it("the stack config example in components/README.md is valid config", () => {
    const readme = fs.readFileSync(path.join(ROOT, "components/README.md"), "utf8");
    const block = /```yaml\n(config:[\s\S]*?)```/.exec(readme);
    assert.ok(block, "no ```yaml config: block in the README");
    const config = (parse(block[1]) as { config: Record<string, unknown> }).config;
    // Pulumi hands structured config to the program as JSON text, strings as they are.
    const asText = Object.fromEntries(
      Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
    );
    const { args, errors } = argsFromStackConfig(asText, "kata-deploy");
    assert.deepEqual(errors, []);
    const plan = planKataDeploy(args, "kata-deploy");
    assert.equal(plan.args.deploymentMode, "job");
    assert.deepEqual(plan.warnings, []);
  });
});
