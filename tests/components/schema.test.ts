// Way 2 of 3: a Pulumi component provider for `pulumi package add`. The schema is inferred here exactly as
// the CLI's plugin host does it (the TypeScript analyzer over index.ts), without the CLI.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental/provider";
import { validatedFieldNames } from "../../components/validation";
import { KataDeploy } from "../../index";
import { COMPONENT_OUTPUTS, MockRecorder, value } from "./mockRuntime";

const ROOT = path.resolve(__dirname, "../..");

interface SchemaProperty {
  type?: string;
  $ref?: string;
  items?: SchemaProperty;
  additionalProperties?: SchemaProperty;
  optional?: boolean;
  plain?: boolean;
  description?: string;
}
interface SchemaType {
  type: string;
  enum?: { name?: string; value: string }[];
  properties?: Record<string, SchemaProperty>;
}
interface Schema {
  name: string;
  resources: Record<
    string,
    {
      isComponent: boolean;
      inputProperties: Record<string, SchemaProperty>;
      properties: Record<string, SchemaProperty>;
      required?: string[];
    }
  >;
  types: Record<string, SchemaType>;
}

describe("components: Pulumi package schema (component provider, inferred without the CLI)", function () {
  this.timeout(300_000);
  let schema: Schema;
  let provider: ComponentProvider;
  const mocks = new MockRecorder();

  after(() => mocks.uninstall());
  before(async () => {
    provider = new ComponentProvider({ components: [KataDeploy], name: "kata-deploy", dirname: ROOT });
    schema = JSON.parse(await provider.getSchema()) as Schema;
  });

  it("is a package folder: PulumiPlugin.yaml (nodejs) and package.json named kata-deploy with @pulumi/pulumi", () => {
    assert.match(fs.readFileSync(path.join(ROOT, "PulumiPlugin.yaml"), "utf8"), /^runtime: nodejs$/m);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      name: string;
      main: string;
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.name, "kata-deploy");
    assert.equal(pkg.main, "index.ts");
    assert.ok(
      pkg.dependencies["@pulumi/pulumi"] && pkg.dependencies.typescript && pkg.dependencies["ts-node"],
    );
    assert.equal(schema.name, "kata-deploy");
  });

  it("the analyzer's tsconfig.json loads only the package's entry files; tsconfig.all.json type-checks the rest", () => {
    const read = (f: string) =>
      JSON.parse(fs.readFileSync(path.join(ROOT, f), "utf8")) as Record<string, unknown>;
    // The analyzer (getSchema) type-loads tsconfig.json's files: the entries, and what they import.
    assert.deepEqual(read("tsconfig.json").include, ["index.ts", "program.ts"]);
    const all = read("tsconfig.all.json");
    assert.equal(all.extends, "./tsconfig.json");
    assert.deepEqual(all.include, ["**/*.ts"]);
    const pkg = read("package.json") as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.typecheck, "tsc --noEmit -p tsconfig.all.json");
  });

  it("has the component kata-deploy:index:KataDeploy", () => {
    assert.deepEqual(Object.keys(schema.resources), ["kata-deploy:index:KataDeploy"]);
    assert.equal(schema.resources["kata-deploy:index:KataDeploy"].isComponent, true);
  });

  it("declares exactly the outputs the component fills, the rollout's as interface types", () => {
    const resource = schema.resources["kata-deploy:index:KataDeploy"];
    assert.deepEqual(Object.keys(resource.properties).sort(), COMPONENT_OUTPUTS);
    assert.deepEqual(resource.properties.mode.$ref, "#/types/kata-deploy:index:DeploymentMode");
    for (const name of ["namespace", "releaseName", "chartVersion", "runId"])
      assert.equal(resource.properties[name].type, "string");
    assert.deepEqual([...(resource.required ?? [])].sort(), COMPONENT_OUTPUTS);
    assert.equal(resource.properties.kataNodes.type, "array");
    assert.deepEqual(resource.properties.kataNodes.items, { type: "string" });
    assert.equal(resource.properties.nodeOutcomes.$ref, "#/types/kata-deploy:index:NodeOutcomesOutput");
    assert.equal(resource.properties.summary.$ref, "#/types/kata-deploy:index:RolloutSummaryOutput");
    // nodeOutcomes: a map by node name (a YAML or Python consumer reads nodes["worker-17"].outcome) and the
    // message table its entries index.
    const outcomes = schema.types["kata-deploy:index:NodeOutcomesOutput"] as SchemaType & {
      required?: string[];
    };
    assert.equal(outcomes.type, "object");
    assert.deepEqual(Object.keys(outcomes.properties ?? {}).sort(), ["messages", "nodes"]);
    assert.deepEqual(outcomes.properties?.nodes, {
      type: "object",
      additionalProperties: { $ref: "#/types/kata-deploy:index:NodeOutcomeOutput" },
      description: outcomes.properties?.nodes.description,
    });
    assert.deepEqual(outcomes.properties?.messages.items, { type: "string" });
    assert.deepEqual([...(outcomes.required ?? [])].sort(), ["messages", "nodes"]);
    const entry = schema.types["kata-deploy:index:NodeOutcomeOutput"] as SchemaType & { required?: string[] };
    const fields = entry.properties ?? {};
    assert.deepEqual(Object.keys(fields).sort(), ["message", "outcome", "reason"]);
    // The contract's outcome is a literal union; the schema carries it as a plain string.
    assert.equal(fields.outcome.type, "string");
    assert.equal(fields.reason.type, "string");
    assert.equal(fields.message.type, "number");
    assert.deepEqual(entry.required, ["outcome"]);
    const summary = schema.types["kata-deploy:index:RolloutSummaryOutput"].properties ?? {};
    assert.deepEqual(Object.keys(summary).sort(), [
      "durationSeconds",
      "failed",
      "skipped",
      "succeeded",
      "total",
      // The rollout's summary counts nodes of outcome `unknown` when there are some (rollout/aggregate.ts summarize).
      "unknown",
    ]);
    assert.ok(Object.values(summary).every((p) => p.type === "number"));
  });

  it("has the closed sets as enums", () => {
    const values = (name: string) => schema.types[`kata-deploy:index:${name}`].enum?.map((e) => e.value);
    assert.deepEqual(values("DeploymentMode"), ["daemonset", "job"]);
    assert.deepEqual(values("K8sDistribution"), ["k8s", "k3s", "rke2", "k0s", "microk8s"]);
    assert.deepEqual(values("NodeSelectorOperator"), ["In", "NotIn", "Exists", "DoesNotExist"]);
    assert.deepEqual(values("ImagePullPolicy"), ["Always", "IfNotPresent", "Never"]);
    assert.deepEqual(values("CpuArch"), ["amd64", "arm64", "s390x", "ppc64le"]);
    assert.deepEqual(values("SnapshotterName"), ["nydus", "erofs"]);
    assert.deepEqual(values("TaintEffect"), ["NoSchedule", "PreferNoSchedule", "NoExecute"]);
    assert.deepEqual(values("DispatcherImplementation"), ["bundled", "upstream"]);
  });

  it("takes the chart's value keys as inputs, outputs accepted (not plain), with values as a map of Any", () => {
    const inputs = schema.resources["kata-deploy:index:KataDeploy"].inputProperties;
    assert.deepEqual(Object.keys(inputs).sort(), [
      "chart",
      "createNamespace",
      "debug",
      "defaultShim",
      "deploymentMode",
      "disableAllShims",
      "dispatcherImplementation",
      "env",
      "image",
      "imagePullPolicy",
      "imagePullSecrets",
      "job",
      "k8sDistribution",
      "kubeconfig",
      "namespace",
      "nodeSelector",
      "priorityClassName",
      "releaseName",
      "rerunToken",
      "rollout",
      "shims",
      "snapshotter",
      "tolerations",
      "values",
    ]);
    assert.equal(inputs.deploymentMode.$ref, "#/types/kata-deploy:index:DeploymentMode");
    assert.deepEqual(inputs.values.additionalProperties, { $ref: "pulumi.json#/Any" });
    assert.equal(inputs.shims.additionalProperties?.$ref, "#/types/kata-deploy:index:ShimSettings");
    // Only createNamespace and dispatcherImplementation are plain: they decide whether resources exist.
    const plain = Object.entries(inputs)
      .filter(([, p]) => p.plain)
      .map(([n]) => n);
    assert.deepEqual(plain.sort(), ["createNamespace", "dispatcherImplementation"]);
    assert.equal(inputs.kubeconfig.type, "string");
    assert.equal(inputs.rollout.$ref, "#/types/kata-deploy:index:RolloutArgs");
    assert.deepEqual(Object.keys(schema.types["kata-deploy:index:RolloutArgs"].properties ?? {}).sort(), [
      "cleanupOnDestroy",
      "healDrift",
      "stuckGraceSeconds",
      "timeoutSeconds",
    ]);
    assert.ok(Object.values(inputs).every((p) => p.optional === true));
    assert.ok(Object.values(inputs).every((p) => (p.description ?? "").length > 0));

    const job = schema.types["kata-deploy:index:JobSettings"].properties ?? {};
    assert.deepEqual(Object.keys(job).sort(), [
      "backoffLimit",
      "cleanup",
      "dispatcherImage",
      "nodeSelector",
      "nodeSelectorExpressions",
      "nodes",
      "parallelism",
      "ttlSecondsAfterFinished",
    ]);
    assert.equal(job.parallelism.type, "number");
    assert.deepEqual(job.nodes.items, { type: "string" });
    assert.equal(
      job.nodeSelectorExpressions.items?.$ref,
      "#/types/kata-deploy:index:NodeSelectorRequirement",
    );
    const requirement = schema.types["kata-deploy:index:NodeSelectorRequirement"].properties ?? {};
    assert.equal(requirement.operator.$ref, "#/types/kata-deploy:index:NodeSelectorOperator");
    assert.deepEqual(Object.keys(schema.types["kata-deploy:index:EnvSettings"].properties ?? {}).sort(), [
      "hostOS",
      "installationPrefix",
      "multiInstallSuffix",
    ]);
  });

  it("constructs through the provider host path (construct) and returns the schema outputs", async () => {
    await mocks.install(false);
    const result = await provider.construct(
      "kdt-construct",
      "kata-deploy:index:KataDeploy",
      { deploymentMode: "job", job: { parallelism: 2 } },
      {},
    );
    const state = result.state as Record<string, import("@pulumi/pulumi").Output<string>>;
    assert.deepEqual(Object.keys(state).sort(), COMPONENT_OUTPUTS);
    assert.equal(await value(state.mode), "job");
    assert.deepEqual(await value(state.kataNodes as unknown as import("@pulumi/pulumi").Output<string[]>), [
      "worker-1",
      "worker-2",
    ]);
    assert.equal(await value(state.releaseName), "kdt-construct");
    await mocks.until(() => mocks.named("kdt-construct").length === 2);
    assert.deepEqual(mocks.one("kubernetes:helm.sh/v4:Chart", "kdt-construct").inputs.values, {
      deploymentMode: "job",
      job: { parallelism: 2 },
    });
  });

  it("the TypeScript interfaces and the zod rules know the same fields (no arg left unvalidated)", () => {
    const inputs = schema.resources["kata-deploy:index:KataDeploy"].inputProperties;
    assert.deepEqual(Object.keys(inputs).sort(), [...validatedFieldNames([])].sort());
    const typeFields = (name: string) =>
      Object.keys(schema.types[`kata-deploy:index:${name}`].properties ?? {}).sort();
    const pairs: [string, PropertyKey[]][] = [
      ["ChartSource", ["chart"]],
      ["ImageRef", ["image"]],
      ["ImagePullSecret", ["imagePullSecrets", 0]],
      ["ShimSettings", ["shims", "*"]],
      ["ShimContainerdSettings", ["shims", "*", "containerd"]],
      ["ShimCrioSettings", ["shims", "*", "crio"]],
      ["ShimAgentSettings", ["shims", "*", "agent"]],
      ["ShimRuntimeClassSettings", ["shims", "*", "runtimeClass"]],
      ["RuntimeClassOverhead", ["shims", "*", "runtimeClass", "overhead"]],
      ["DefaultShims", ["defaultShim"]],
      ["SnapshotterSettings", ["snapshotter"]],
      ["Toleration", ["tolerations", 0]],
      ["EnvSettings", ["env"]],
      ["JobSettings", ["job"]],
      ["ImageRef", ["job", "dispatcherImage"]],
      ["JobCleanupSettings", ["job", "cleanup"]],
      ["NodeSelectorRequirement", ["job", "nodeSelectorExpressions", 0]],
      ["NodeSelectorRequirement", ["job", "cleanup", "nodeSelectorExpressions", 0]],
      ["RolloutArgs", ["rollout"]],
    ];
    for (const [type, at] of pairs) {
      assert.deepEqual(typeFields(type), validatedFieldNames(at).sort(), `${type} vs ${at.join(".")}`);
    }
  });
});
