// KataDeploy with its rollout under Pulumi's mock runtime: the KataRollout and the job-mode extras are registered
// with the right inputs and dependencies, credentials reach only secret values, and the rollout's outputs flow to
// the component's outputs. The dependencies are read from the registration requests the SDK sends.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import {
  DeploymentMode,
  DispatcherImplementation,
  KataDeploy,
  planKataDeploy,
  planRollout,
} from "../../index";
import { buildDispatcherBundle } from "../../dispatcher/bundle";
import {
  FIXTURE_TOKEN,
  KUBECONFIG_FIXTURE,
  MockRecorder,
  ROLLOUT_OUTCOMES,
  ROLLOUT_RUN_ID,
  ROLLOUT_SUMMARY,
  ROLLOUT_TYPE,
  Registered,
  isKnown,
  registeredUrns,
  value,
} from "./mockRuntime";

const CHART = "kubernetes:helm.sh/v4:Chart";
const CONFIGMAP = "kubernetes:core/v1:ConfigMap";
const ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role";
const ROLEBINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const KUBECONFIG_TEXT = fs.readFileSync(KUBECONFIG_FIXTURE, "utf8");

function isSecret(v: unknown): v is { value: unknown } {
  return !!v && typeof v === "object" && SECRET_SIG in (v as Record<string, unknown>);
}

/** The inputs with every secret value replaced, as they would be visible in plain text. */
function redacted(v: unknown): unknown {
  if (isSecret(v)) return "[secret]";
  if (Array.isArray(v)) return v.map(redacted);
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redacted(x)]));
  return v;
}

function urnOf(type: string, name: string): string {
  const urn = registeredUrns().find((u) => u.endsWith(`${type}::${name}`));
  assert.ok(urn, `no URN for ${type} ${name}`);
  return urn;
}

interface StageInput {
  job: {
    metadata: { name: string; namespace: string };
    spec: {
      template: {
        spec: {
          containers: { image: string; command: string[] }[];
          volumes?: { configMap?: { name: string } }[];
        };
      };
    };
  };
  ownerValue: string;
  selection: unknown;
}

describe("components/KataDeploy: the rollout under the mock runtime", function () {
  this.timeout(300_000);
  const mocks = new MockRecorder();
  before(() => mocks.install(false));
  after(() => mocks.uninstall());

  const registration = async (type: string, name: string): Promise<Registered> => {
    await mocks.until(() => mocks.registered.some((r) => r.type === type && r.name === name), 20_000);
    return mocks.one(type, name);
  };

  it("job mode, bundled: script ConfigMap, reader Role/Binding and KataRollout after the chart; outputs flow", async () => {
    const kata = new KataDeploy("kro-job", {
      deploymentMode: DeploymentMode.Job,
      namespace: "kata",
      kubeconfig: KUBECONFIG_TEXT,
      rerunToken: "2026-11-25",
      rollout: { timeoutSeconds: 900, healDrift: false, stuckGraceSeconds: 120 },
      job: { parallelism: 8 },
    });
    assert.deepEqual(await value(kata.nodeOutcomes), ROLLOUT_OUTCOMES);
    assert.deepEqual(await value(kata.kataNodes), ["worker-1", "worker-2"]);
    assert.deepEqual(await value(kata.summary), ROLLOUT_SUMMARY);
    assert.equal(await value(kata.runId), ROLLOUT_RUN_ID);

    const rollout = await registration(ROLLOUT_TYPE, "kro-job-rollout");
    const configMap = await registration(CONFIGMAP, "kro-job-dispatcher-script");
    const role = await registration(ROLE, "kro-job-dispatcher-reader");
    const binding = await registration(ROLEBINDING, "kro-job-dispatcher-reader");
    const chartUrn = urnOf(CHART, "kro-job");

    // Inputs: the rollout's options, the install and cleanup stages, mode and namespace.
    const inputs = rollout.inputs;
    assert.equal(inputs.mode, "job");
    assert.equal(inputs.namespace, "kata");
    assert.equal(inputs.timeoutSeconds, 900);
    assert.equal(inputs.healDrift, false);
    assert.equal(inputs.cleanupOnDestroy, true);
    assert.equal(inputs.stuckGraceSeconds, 120);
    assert.equal(inputs.installDispatcherJobName, "kata-deploy-install-dispatcher");
    assert.match(String(inputs.runKey), /^v1:[0-9a-f]{64}$/);
    // The provider decides with these: a changed token installs every node, a new release name replaces.
    assert.equal(inputs.rerunToken, "2026-11-25");
    assert.equal(inputs.releaseName, "kro-job");
    const install = inputs.install as StageInput & { payload?: string };
    const cleanup = inputs.cleanup as StageInput;
    assert.match(String(install.payload), /^p1:[0-9a-f]{32}$/, "the payload the dispatcher records");
    assert.equal(install.job.metadata.namespace, "kata");
    assert.equal(cleanup.job.metadata.name, "kata-deploy-cleanup-dispatcher");
    assert.equal(install.ownerValue, "kata-deploy-install");
    const container = install.job.spec.template.spec.containers[0];
    assert.equal(container.command[0], "node");
    assert.ok(container.command.includes("--parallelism=8"), container.command.join(" "));
    const bundle = await buildDispatcherBundle();
    assert.equal(container.command[1], `/opt/kata-dispatcher/${bundle.entry}`);
    // The Job mounts the ConfigMap the component registers, which holds exactly the bundle.
    const cmMeta = configMap.inputs.metadata as { name: string; namespace: string };
    assert.ok(install.job.spec.template.spec.volumes?.some((v) => v.configMap?.name === cmMeta.name));
    assert.equal(cmMeta.namespace, "kata");
    assert.deepEqual(configMap.inputs.data, bundle.files);
    assert.deepEqual(role.inputs.rules, [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
      { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch"] },
    ]);
    assert.deepEqual(binding.inputs.subjects, [
      { kind: "ServiceAccount", name: "kata-deploy-dispatcher-sa", namespace: "kata" },
    ]);

    // Dependencies as sent to the engine: the rollout after the chart and the extras, the extras after the chart.
    for (const dep of [
      chartUrn,
      urnOf(CONFIGMAP, "kro-job-dispatcher-script"),
      urnOf(ROLE, "kro-job-dispatcher-reader"),
      urnOf(ROLEBINDING, "kro-job-dispatcher-reader"),
    ]) {
      assert.ok(rollout.dependencies.includes(dep), `rollout depends on ${dep}: ${rollout.dependencies}`);
    }
    for (const extra of [configMap, role, binding]) assert.ok(extra.dependencies.includes(chartUrn));
    assert.ok(
      registeredUrns().some((u) =>
        u.endsWith(`kata-deploy:index:KataDeploy$${ROLLOUT_TYPE}::kro-job-rollout`),
      ),
    );

    // Credentials: the connection is a secret input; the fake token appears in no other registered input.
    assert.ok(isSecret(inputs.connection), "connection must be a secret input");
    const connection = (inputs.connection as { value: { server: string; token: string } }).value;
    assert.equal(connection.server, "https://127.0.0.1:6443");
    assert.equal(connection.token, FIXTURE_TOKEN);
    const component = mocks.one("kata-deploy:index:KataDeploy", "kro-job");
    assert.ok(
      isSecret(component.inputs.kubeconfig),
      "the component's kubeconfig input is stored as a secret",
    );
    assert.ok(String(inputs.__provider).length > 1000, "the serialized provider rides along");
    for (const r of mocks.registered) {
      assert.ok(
        !JSON.stringify(redacted(r.inputs)).includes(FIXTURE_TOKEN),
        `${r.type} ${r.name} leaks the token`,
      );
    }
    assert.ok(!String(inputs.__provider).includes(FIXTURE_TOKEN));
  });

  it("the rollout's dispatcher Jobs are the ones `npm run plan` prints, customRuntimes included", async () => {
    const args = {
      deploymentMode: DeploymentMode.Job,
      namespace: "kata",
      job: { parallelism: 3, nodes: ["worker-1", "worker-2"] },
      values: {
        customRuntimes: {
          enabled: true,
          runtimes: {
            mine: {
              baseConfig: "qemu",
              dropIn: "",
              runtimeClass:
                "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: kata-mine\nhandler: kata-mine\n",
            },
          },
        },
      },
    };
    new KataDeploy("kro-plan", { ...args, kubeconfig: KUBECONFIG_TEXT });
    const rollout = await registration(ROLLOUT_TYPE, "kro-plan-rollout");
    const planned = await planRollout(planKataDeploy(args, "kro-plan"));
    assert.ok(planned);
    assert.deepEqual((rollout.inputs.install as StageInput).job, planned.installDispatcherJob);
    assert.deepEqual((rollout.inputs.cleanup as StageInput).job, planned.cleanupDispatcherJob);
    const role = await registration(ROLE, "kro-plan-dispatcher-reader");
    assert.deepEqual(role.inputs.rules, planned.podReaderRole.rules);
  });

  it("job mode, upstream: no script ConfigMap; the Jobs run the chart's dispatcher image", async () => {
    new KataDeploy("kro-up", {
      deploymentMode: DeploymentMode.Job,
      dispatcherImplementation: DispatcherImplementation.Upstream,
      kubeconfig: KUBECONFIG_TEXT,
    });
    const rollout = await registration(ROLLOUT_TYPE, "kro-up-rollout");
    await registration(ROLE, "kro-up-dispatcher-reader");
    assert.equal(mocks.named("kro-up-dispatcher-script").length, 0);
    const container = (rollout.inputs.install as StageInput).job.spec.template.spec.containers[0];
    assert.equal(container.image, "quay.io/kata-containers/kata-deploy-job-dispatcher:4.0.0");
    assert.ok(rollout.dependencies.includes(urnOf(CHART, "kro-up")));
    assert.ok(rollout.dependencies.includes(urnOf(ROLE, "kro-up-dispatcher-reader")));
  });

  it("daemonset mode: the rollout waits for the chart's DaemonSet, no job-mode extras; $KUBECONFIG by default", async () => {
    const kata = new KataDeploy("kro-ds", { env: { multiInstallSuffix: "blue" } });
    assert.deepEqual(await value(kata.kataNodes), ["worker-1", "worker-2"]);
    const rollout = await registration(ROLLOUT_TYPE, "kro-ds-rollout");
    assert.equal(rollout.inputs.mode, "daemonset");
    assert.deepEqual((rollout.inputs.daemonSet as { name: string; podSelector: unknown }).podSelector, {
      name: "kata-deploy-blue",
    });
    assert.deepEqual(rollout.dependencies, [urnOf(CHART, "kro-ds")]);
    assert.equal(mocks.registered.filter((r) => r.name.startsWith("kro-ds-dispatcher")).length, 0);
    // No kubeconfig argument: the connection is a reference to $KUBECONFIG (the fixture), without its credential.
    assert.ok(isSecret(rollout.inputs.connection));
    assert.deepEqual(rollout.inputs.connection.value, {
      ambient: true,
      server: "https://127.0.0.1:6443",
      context: "fixture",
      source: "$KUBECONFIG",
    });
    for (const r of mocks.registered.filter((x) => x.name.startsWith("kro-ds")))
      assert.ok(!JSON.stringify(redacted(r.inputs)).includes(FIXTURE_TOKEN), r.name);
    assert.equal(
      mocks.registered.filter((x) => x.name === "kro-ds" && x.custom).length,
      0,
      "no provider of its own",
    );
  });

  it("a secret kubeconfig Output keeps only the connection secret (the chart's values stay plain)", async () => {
    new KataDeploy("kro-secret", {
      deploymentMode: DeploymentMode.Job,
      kubeconfig: pulumi.secret(KUBECONFIG_TEXT),
    });
    const rollout = await registration(ROLLOUT_TYPE, "kro-secret-rollout");
    const chart = await registration(CHART, "kro-secret");
    assert.ok(!isSecret(chart.inputs.values), "chart values must not become secret");
    assert.deepEqual(chart.inputs.values, { deploymentMode: "job" });
    assert.ok(isSecret(rollout.inputs.connection));
    assert.ok(!isSecret(rollout.inputs.install) && !isSecret(rollout.inputs.runKey));
    for (const r of mocks.registered) assert.ok(!JSON.stringify(redacted(r.inputs)).includes(FIXTURE_TOKEN));
  });

  it("an invalid kubeconfig or rollout argument is refused before anything is registered, never echoing it", () => {
    assert.throws(
      () => new KataDeploy("kro-bad", { kubeconfig: "  ", rollout: { timeoutSeconds: 0 } }),
      (e: Error) =>
        /kubeconfig: is empty/.test(e.message) && /rollout\.timeoutSeconds: must be ≥ 1/.test(e.message),
    );
    assert.equal(mocks.named("kro-bad").length, 0);
  });
});

describe("components/KataDeploy: the rollout in preview (isDryRun) with unknowns", function () {
  this.timeout(300_000);
  const mocks = new MockRecorder();
  before(() => mocks.install(true));
  after(async () => {
    await mocks.install(false);
    mocks.uninstall();
  });

  for (const mode of [DeploymentMode.Job, DeploymentMode.Daemonset]) {
    it(`${mode} mode: the rollout is registered with unknown inputs, its outputs stay unknown, nothing hangs`, async () => {
      const name = `kro-preview-${mode}`;
      const kata = new KataDeploy(name, {
        deploymentMode: mode,
        releaseName: pulumi.output(pulumi.unknown as unknown as string),
        kubeconfig: pulumi.output(pulumi.unknown as unknown as string),
      });
      await mocks.until(() => mocks.named(`${name}-rollout`).length === 1, 20_000);
      assert.equal(mocks.one(ROLLOUT_TYPE, `${name}-rollout`).type, ROLLOUT_TYPE);
      if (mode === DeploymentMode.Job)
        await mocks.until(() => mocks.named(`${name}-dispatcher-reader`).length === 2);
      assert.equal(await isKnown(kata.kataNodes), false);
      assert.equal(await isKnown(kata.runId), false);
      assert.ok(await value(kata.urn));
    });
  }
});
