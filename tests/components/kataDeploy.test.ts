import assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
// Way 1 of 3: the project imported as a TypeScript library.
import { CHART_REFERENCE, DeploymentMode, KataDeploy, KataDeployArgs } from "../../index";
import {
  KUBECONFIG_FIXTURE,
  MockRecorder,
  captureWarnings,
  isKnown,
  registeredUrns,
  settle,
  value,
} from "./mockRuntime";

const COMPONENT = "kata-deploy:index:KataDeploy";
const CHART = "kubernetes:helm.sh/v4:Chart";
const NAMESPACE = "kubernetes:core/v1:Namespace";
/** How the mock monitor presents a secret input (@pulumi/pulumi runtime/rpc specialSigKey / specialSecretSig). */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

async function outputsOf(k: KataDeploy) {
  return {
    mode: await value(k.mode),
    namespace: await value(k.namespace),
    releaseName: await value(k.releaseName),
    chartVersion: await value(k.chartVersion),
  };
}

describe("components/KataDeploy under the mock runtime", () => {
  const mocks = new MockRecorder();
  let captured: ReturnType<typeof captureWarnings>;
  before(async () => {
    await mocks.install(false);
    captured = captureWarnings();
  });
  after(() => {
    captured.restore();
    mocks.uninstall();
  });

  it("daemonset by default: one helm.v4.Chart child with the default chart and no values", async () => {
    const kata = new KataDeploy("kdt-ds", {});
    assert.deepEqual(await outputsOf(kata), {
      mode: "daemonset",
      namespace: "kube-system",
      releaseName: "kdt-ds",
      chartVersion: "4.0.0",
    });
    await mocks.until(() => mocks.named("kdt-ds").length === 2);
    assert.equal(mocks.one(COMPONENT, "kdt-ds").custom, false);
    const chart = mocks.one(CHART, "kdt-ds");
    assert.equal(chart.inputs.chart, CHART_REFERENCE);
    assert.equal(chart.inputs.chart, "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy");
    assert.equal(chart.inputs.version, "4.0.0");
    assert.equal(chart.inputs.namespace, "kube-system");
    assert.equal(chart.inputs.name, "kdt-ds");
    assert.deepEqual(chart.inputs.values ?? {}, {});
    assert.equal(chart.inputs.repositoryOpts, undefined);
    // Parent: the chart's URN nests under the component's type.
    assert.ok(
      registeredUrns().some((u) => u.endsWith(`::${COMPONENT}$${CHART}::kdt-ds`)),
      registeredUrns().join("\n"),
    );
    assert.equal(mocks.named("kdt-ds").filter((r) => r.type === NAMESPACE).length, 0);
  });

  it("job mode: typed fields win over values, namespace created, the caller's provider on every child", async () => {
    const provider = new k8s.Provider("kdt-provider", {});
    const args: KataDeployArgs = {
      deploymentMode: DeploymentMode.Job,
      namespace: "kata-system",
      createNamespace: true,
      releaseName: "kata",
      job: { parallelism: 5, nodes: ["node-a", "node-b"] },
      env: { multiInstallSuffix: "dev" },
      values: { job: { parallelism: 50, backoffLimit: 1 }, monitor: { enabled: true } },
      kubeconfig: KUBECONFIG_FIXTURE,
    };
    const kata = new KataDeploy("kdt-job", args, { provider });
    assert.deepEqual(await outputsOf(kata), {
      mode: "job",
      namespace: "kata-system",
      releaseName: "kata",
      chartVersion: "4.0.0",
    });
    await mocks.until(() => mocks.named("kdt-job").length === 3);
    const providerRef = `urn:pulumi:dev::kata-deploy::pulumi:providers:kubernetes::kdt-provider::kdt-provider-id`;
    const ns = mocks.one(NAMESPACE, "kdt-job");
    assert.deepEqual((ns.inputs.metadata as { name: string }).name, "kata-system");
    assert.equal(ns.provider, providerRef);
    const chart = mocks.one(CHART, "kdt-job");
    assert.equal(chart.provider, providerRef);
    // The cluster's identity, read through the caller's provider, for the rollout's same-cluster check.
    await mocks.until(() => mocks.named("kdt-job-cluster-identity").length === 1);
    assert.equal(mocks.one(NAMESPACE, "kdt-job-cluster-identity").provider, providerRef);
    assert.equal(chart.inputs.namespace, "kata-system");
    assert.equal(chart.inputs.name, "kata");
    assert.deepEqual(chart.inputs.values, {
      job: { parallelism: 5, backoffLimit: 1, nodes: ["node-a", "node-b"] },
      monitor: { enabled: true },
      deploymentMode: "job",
      env: { multiInstallSuffix: "dev" },
    });
    const urns = registeredUrns();
    assert.ok(urns.some((u) => u.endsWith(`::${COMPONENT}$${NAMESPACE}::kdt-job`)));
    assert.ok(urns.some((u) => u.endsWith(`::${COMPONENT}$${CHART}::kdt-job`)));
  });

  it("honours opts.providers (map and list) as well", async () => {
    const provider = new k8s.Provider("kdt-provider2", {});
    new KataDeploy(
      "kdt-prov-map",
      { kubeconfig: KUBECONFIG_FIXTURE },
      { providers: { kubernetes: provider } },
    );
    new KataDeploy("kdt-prov-list", { kubeconfig: KUBECONFIG_FIXTURE }, { providers: [provider] });
    await mocks.until(
      () => mocks.named("kdt-prov-map").length === 2 && mocks.named("kdt-prov-list").length === 2,
    );
    const ref = "urn:pulumi:dev::kata-deploy::pulumi:providers:kubernetes::kdt-provider2::kdt-provider2-id";
    assert.equal(mocks.one(CHART, "kdt-prov-map").provider, ref);
    assert.equal(mocks.one(CHART, "kdt-prov-list").provider, ref);
  });

  it("one cluster: a caller's provider (also inherited) without kubeconfig is refused before anything registers", () => {
    const provider = new k8s.Provider("kdt-provider3", {});
    const parent = new pulumi.ComponentResource(
      "test:index:Parent",
      "kdt-parent",
      {},
      { providers: [provider] },
    );
    const before = mocks.registered.length;
    for (const [name, opts] of [
      ["kdt-refused-provider", { provider }],
      ["kdt-refused-map", { providers: { kubernetes: provider } }],
      ["kdt-refused-inherited", { parent }],
    ] as [string, pulumi.ComponentResourceOptions][]) {
      assert.throws(
        () => new KataDeploy(name, {}, opts),
        (e: Error) => /kubeconfig: required with an explicit Kubernetes provider/.test(e.message),
        name,
      );
    }
    assert.equal(mocks.registered.slice(before).filter((r) => r.name.startsWith("kdt-refused")).length, 0);
  });

  it("one cluster: the kubeconfig argument alone builds the component's own provider, used by every Kubernetes child", async () => {
    new KataDeploy("kdt-own", {
      deploymentMode: DeploymentMode.Job,
      createNamespace: true,
      namespace: "kata",
      kubeconfig: KUBECONFIG_FIXTURE,
    });
    await mocks.until(() => mocks.named("kdt-own").length === 4);
    const own = mocks.one("pulumi:providers:kubernetes", "kdt-own");
    const ref = `urn:pulumi:dev::kata-deploy::${COMPONENT}$pulumi:providers:kubernetes::kdt-own::kdt-own-id`;
    for (const type of [NAMESPACE, CHART]) assert.equal(mocks.one(type, "kdt-own").provider, ref, type);
    await mocks.until(() => mocks.named("kdt-own-dispatcher-reader").length === 2);
    for (const r of mocks.named("kdt-own-dispatcher-reader")) assert.equal(r.provider, ref, r.type);
    // The provider reads the same file the rollout's connection was resolved from; a secret input.
    const secretInput = own.inputs.kubeconfig as Record<string, unknown>;
    assert.equal(secretInput[SECRET_SIG_KEY], SECRET_SIG, "the provider's kubeconfig is a secret input");
    assert.equal(secretInput.value, KUBECONFIG_FIXTURE);
  });

  it("chart source overrides: version, an https repository, a local path (version read from its Chart.yaml)", async () => {
    new KataDeploy("kdt-src-oci", {
      chart: { repository: "oci://registry.example/charts", version: "4.0.1" },
    });
    new KataDeploy("kdt-src-https", { chart: { repository: "https://charts.example/kata" } });
    const local = new KataDeploy("kdt-src-path", {
      chart: { path: "tests/components/fixtures/kata-deploy" },
    });
    await mocks.until(() =>
      ["kdt-src-oci", "kdt-src-https", "kdt-src-path"].every((n) => mocks.named(n).length === 2),
    );
    const oci = mocks.one(CHART, "kdt-src-oci").inputs;
    assert.equal(oci.chart, "oci://registry.example/charts/kata-deploy");
    assert.equal(oci.version, "4.0.1");
    const https = mocks.one(CHART, "kdt-src-https").inputs;
    assert.equal(https.chart, "kata-deploy");
    assert.equal(https.version, "4.0.0");
    assert.deepEqual(https.repositoryOpts, { repo: "https://charts.example/kata" });
    const path = mocks.one(CHART, "kdt-src-path").inputs;
    assert.equal(path.chart, "tests/components/fixtures/kata-deploy");
    assert.equal(path.version, undefined);
    assert.equal(await value(local.chartVersion), "4.0.0-local");
  });

  it("outputs as inputs: validated once resolved, and the chart gets the resolved values", async () => {
    const kata = new KataDeploy("kdt-outputs", {
      deploymentMode: pulumi.output(DeploymentMode.Job),
      job: { parallelism: pulumi.output(7), nodeSelector: pulumi.output({ "kubernetes.io/os": "linux" }) },
      namespace: Promise.resolve("kata"),
    });
    assert.equal(await value(kata.mode), "job");
    assert.equal(await value(kata.namespace), "kata");
    await mocks.until(() => mocks.named("kdt-outputs").length === 2);
    assert.deepEqual(mocks.one(CHART, "kdt-outputs").inputs.values, {
      deploymentMode: "job",
      job: { parallelism: 7, nodeSelector: { "kubernetes.io/os": "linux" } },
    });
  });

  it("warns through pulumi.log.warn (job.* in daemonset mode), once per component", async () => {
    captured.warnings.length = 0;
    const kata = new KataDeploy("kdt-warn", { job: { parallelism: 3 } });
    await value(kata.mode);
    const later = new KataDeploy("kdt-warn-out", { job: { parallelism: pulumi.output(3) } });
    await value(later.mode);
    const daemonsetWarnings = captured.warnings.filter((w) =>
      /^job\.parallelism: is set but deploymentMode is daemonset/.test(w),
    );
    assert.equal(daemonsetWarnings.length, 2, captured.warnings.join("\n"));
  });

  it("the README's TypeScript example deploys as written, without warnings", async () => {
    captured.warnings.length = 0;
    const kata = new KataDeploy("kdt-readme", {
      deploymentMode: DeploymentMode.Job,
      namespace: "kata-system",
      createNamespace: true,
      job: { parallelism: 20, nodeSelector: { "node.kubernetes.io/pool": "kata" } },
      disableAllShims: true,
      shims: { "qemu-runtime-rs": { enabled: true } },
      defaultShim: { amd64: "qemu-runtime-rs", arm64: "qemu-runtime-rs", s390x: "qemu-runtime-rs" },
      values: { monitor: { enabled: true } },
    });
    assert.equal(await value(kata.namespace), "kata-system");
    await mocks.until(() => mocks.named("kdt-readme").length === 3);
    // The one warning is the preview's: the fixture kubeconfig's cluster does not exist, so the plan is unknown.
    await mocks.until(() => captured.warnings.length > 0);
    const [unreadable, ...others] = captured.warnings;
    assert.match(
      unreadable ?? "",
      /^KataDeploy "kdt-readme": which nodes the next run installs is unknown \(cannot read the nodes at https:\/\/127\.0\.0\.1:6443/,
    );
    assert.deepEqual(others, []);
    assert.deepEqual((mocks.one(CHART, "kdt-readme").inputs.values as { shims: unknown }).shims, {
      "qemu-runtime-rs": { enabled: true },
      disableAll: true,
    });
  });

  it("an invalid output value rejects before any resource input gets it (the chart is never registered)", async () => {
    const caught: unknown[] = [];
    const listener = (reason: unknown) => caught.push(reason);
    process.on("unhandledRejection", listener);
    try {
      const kata = new KataDeploy("kdt-bad-output", { job: { parallelism: pulumi.output(0) } });
      const failure = await new Promise<unknown>((resolve) => {
        kata.mode.apply(() => resolve(undefined));
        const timer = setInterval(() => {
          if (caught.length > 0) {
            clearInterval(timer);
            resolve(caught[0]);
          }
        }, 5);
      });
      assert.match(String(failure), /job\.parallelism: must be ≥ 1/);
      await settle(300);
    } finally {
      process.removeListener("unhandledRejection", listener);
    }
    assert.deepEqual(
      mocks.named("kdt-bad-output").map((r) => r.type),
      [COMPONENT],
    );
  });
});

describe("components/KataDeploy in preview (isDryRun) with unknown inputs", () => {
  const mocks = new MockRecorder();
  before(() => mocks.install(true));
  after(async () => {
    await mocks.install(false);
    mocks.uninstall();
  });

  it("does not hang or fail: unknown parts are skipped, the chart is registered, outputs stay unknown", async () => {
    assert.equal(pulumi.runtime.isDryRun(), true);
    const source = new k8s.core.v1.ConfigMap("kdt-preview-source", { data: { a: "b" } });
    const unknownName = source.metadata.uid; // not returned by the mock: unknown in preview
    assert.equal(await isKnown(unknownName), false);
    const kata = new KataDeploy("kdt-preview", {
      deploymentMode: DeploymentMode.Job,
      // Would be rejected if known together with a selector; unknown, it is skipped, not failed.
      job: {
        nodes: unknownName.apply((n) => [n]),
        nodeSelector: { "kubernetes.io/os": "linux" },
        parallelism: 4,
      },
      releaseName: pulumi.output(pulumi.unknown as unknown as string),
    });
    await mocks.until(() => mocks.named("kdt-preview").length === 2);
    assert.equal(mocks.one(CHART, "kdt-preview").type, CHART);
    assert.equal(await isKnown(kata.mode), false);
    assert.equal(await isKnown(kata.chartVersion), false);
    assert.ok(await value(kata.urn));
  });

  it("plain invalid values still fail at once in preview, unknowns beside them notwithstanding", () => {
    assert.throws(
      () =>
        new KataDeploy("kdt-preview-bad", {
          job: { parallelism: 0, nodes: pulumi.output(pulumi.unknown as unknown as string[]) },
        }),
      /job\.parallelism: must be ≥ 1/,
    );
  });

  it("fully known args in preview give known outputs (plan shown in the preview)", async () => {
    const kata = new KataDeploy("kdt-preview-known", { deploymentMode: DeploymentMode.Job });
    assert.equal(await value(kata.mode), "job");
    assert.equal(await value(kata.chartVersion), "4.0.0");
  });
});
