import assert from "node:assert/strict";
import {
  APP_VERSION,
  CHART_VERSION,
  chartDefaults,
  identityImmutable,
  mergeValues,
} from "../../chart/defaults";

// Expectations come from kata-deploy-chart.md §0-§1 (OLD column) and design.md §1, written out by hand.
describe("chart/defaults: chart 4.0.0 values", () => {
  it("is chart 4.0.0 with appVersion 4.0.0", () => {
    assert.equal(CHART_VERSION, "4.0.0");
    assert.equal(APP_VERSION, "4.0.0");
  });

  it("the release's mode and suffix are immutable from chart 4.1.0 on (kata-deploy-chart.md, state ConfigMap)", () => {
    for (const v of ["4.1.0", "4.2.0", "v4.1.3", "5.0.0", "4.10.0"])
      assert.equal(identityImmutable(v), true, v);
    for (const v of ["4.0.0", "3.9.1", undefined, "", "main"])
      assert.equal(identityImmutable(v), false, String(v));
  });

  it("has the OLD job.* defaults", () => {
    const job = chartDefaults().job;
    assert.deepEqual(job, {
      dispatcherImage: { reference: "quay.io/kata-containers/kata-deploy-job-dispatcher", tag: "" },
      parallelism: 100,
      nodes: [],
      nodeSelector: {},
      nodeSelectorExpressions: [
        { key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist" },
        { key: "node-role.kubernetes.io/master", operator: "DoesNotExist" },
      ],
      cleanup: {
        nodes: [],
        nodeSelector: {},
        nodeSelectorExpressions: [{ key: "katacontainers.io/kata-runtime", operator: "Exists" }],
      },
      ttlSecondsAfterFinished: 600,
      backoffLimit: 3,
    });
  });

  it("has the top-level OLD defaults", () => {
    const v = chartDefaults();
    assert.equal(v.deploymentMode, "daemonset");
    assert.deepEqual(v.image, { reference: "quay.io/kata-containers/kata-deploy", tag: "" });
    assert.equal(v.imagePullPolicy, "Always");
    assert.deepEqual(v.imagePullSecrets, []);
    assert.equal(v.k8sDistribution, "k8s");
    assert.equal(v.debug, false);
    assert.deepEqual(v.snapshotter, {
      setup: ["nydus"],
      erofsMergeMode: "",
      erofsSnapshotterMode: "",
      erofsDmverity: false,
    });
    assert.deepEqual(v.startupTaints, []);
    assert.deepEqual([v.podLabels, v.podAnnotations, v.affinity], [{}, {}, {}]);
    assert.deepEqual(v.nodeSelector, {});
    assert.deepEqual(v.tolerations, []);
    assert.equal(v.priorityClassName, "system-node-critical");
    assert.deepEqual(v.defaultShim, {
      amd64: "qemu-runtime-rs",
      arm64: "qemu-runtime-rs",
      s390x: "qemu-runtime-rs",
      ppc64le: "qemu",
    });
    assert.deepEqual(v.runtimeClasses, {
      enabled: true,
      createDefault: false,
      defaultName: "kata",
      overheadEnabled: true,
    });
    assert.deepEqual(v.env, { installationPrefix: "", hostOS: "", multiInstallSuffix: "" });
    assert.deepEqual(v.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
  });

  it("has the full OLD default shim set with its arches", () => {
    const shims = chartDefaults().shims ?? {};
    const arches: Record<string, string[]> = {};
    for (const [name, config] of Object.entries(shims)) {
      if (name === "disableAll") continue;
      arches[name] = (config as { supportedArches: string[] }).supportedArches;
    }
    const amd = ["amd64"];
    assert.deepEqual(arches, {
      clh: amd,
      "clh-azure": amd,
      "clh-runtime-rs": amd,
      "clh-azure-runtime-rs": amd,
      dragonball: amd,
      fc: amd,
      qemu: ["amd64", "arm64", "s390x", "ppc64le"],
      "qemu-runtime-rs": ["amd64", "arm64", "s390x"],
      "qemu-nvidia-cpu": ["amd64", "arm64"],
      "qemu-nvidia-cpu-runtime-rs": ["amd64", "arm64"],
      "qemu-nvidia-gpu": amd,
      "qemu-nvidia-gpu-runtime-rs": ["amd64", "arm64"],
      "qemu-nvidia-gpu-snp": amd,
      "qemu-nvidia-gpu-snp-runtime-rs": amd,
      "qemu-nvidia-gpu-tdx": amd,
      "qemu-nvidia-gpu-tdx-runtime-rs": amd,
      "qemu-snp": amd,
      "qemu-snp-runtime-rs": amd,
      "qemu-tdx": amd,
      "qemu-tdx-runtime-rs": amd,
      "qemu-se": ["s390x"],
      "qemu-se-runtime-rs": ["s390x"],
      "qemu-coco-dev": ["amd64", "s390x"],
      "qemu-coco-dev-runtime-rs": ["amd64", "arm64", "s390x"],
      remote: ["amd64", "ppc64le", "s390x"],
    });
    assert.equal(shims.disableAll, false);
    assert.equal((shims.remote as { enabled: boolean }).enabled, false);
    assert.equal((shims.qemu as { enabled: null }).enabled, null);
    assert.deepEqual((shims.fc as { containerd: unknown }).containerd, { snapshotter: "devmapper" });
    assert.deepEqual(shims["qemu-snp"], {
      enabled: null,
      supportedArches: ["amd64"],
      allowedHypervisorAnnotations: [],
      containerd: { snapshotter: "nydus", forceGuestPull: false },
      crio: { guestPull: true },
      agent: { httpsProxy: "", noProxy: "" },
    });
    assert.deepEqual((shims["qemu-nvidia-gpu-tdx"] as { runtimeClass: unknown }).runtimeClass, {
      nodeSelector: { "nvidia.com/cc.ready.state": "true", "intel.feature.node.kubernetes.io/tdx": "true" },
    });
  });

  it("returns a fresh copy each time", () => {
    const a = chartDefaults();
    (a.job as { parallelism: number }).parallelism = 1;
    assert.equal(chartDefaults().job?.parallelism, 100);
  });
});

describe("chart/defaults: mergeValues follows Helm's coalescing", () => {
  const defaults = {
    a: { b: 1, c: { d: "x", e: "y" } },
    list: [1, 2, 3],
    keep: "k",
    table: { t: 1 },
    scalar: "s",
  };

  it("deep-merges maps, user keys win", () => {
    const merged = mergeValues(defaults, { a: { c: { d: "user" } } });
    assert.deepEqual(merged.a, { b: 1, c: { d: "user", e: "y" } });
    assert.equal(merged.keep, "k");
  });

  it("replaces lists whole", () => {
    assert.deepEqual(mergeValues(defaults, { list: [9] }).list, [9]);
    assert.deepEqual(mergeValues(defaults, { list: [] }).list, []);
  });

  it("a user null deletes a default key, at any depth", () => {
    const merged = mergeValues(defaults, { keep: null, a: { c: { e: null } } });
    assert.equal("keep" in merged, false);
    assert.deepEqual(merged.a, { b: 1, c: { d: "x" } });
  });

  it("a user null for a key the defaults lack stays null", () => {
    assert.equal(mergeValues(defaults, { extra: null }).extra, null);
  });

  it("an empty map does not clear a defaulted map", () => {
    assert.deepEqual(mergeValues(defaults, { table: {} }).table, { t: 1 });
  });

  it("a type clash keeps the user's value and warns", () => {
    const warnings: string[] = [];
    const merged = mergeValues(defaults, { a: { c: "flat" }, scalar: { x: 1 } }, (w) => warnings.push(w));
    assert.equal((merged.a as { c: unknown }).c, "flat");
    assert.deepEqual(merged.scalar, { x: 1 });
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /a\.c/);
  });

  it("modifies neither argument", () => {
    const user = { a: { c: { d: null } }, list: [7] };
    const userCopy = JSON.parse(JSON.stringify(user));
    const defaultsCopy = JSON.parse(JSON.stringify(defaults));
    const merged = mergeValues(defaults, user);
    (merged.list as number[]).push(8);
    (merged.a as { c: Record<string, unknown> }).c.z = 1;
    assert.deepEqual(user, userCopy);
    assert.deepEqual(defaults, defaultsCopy);
  });

  it("over the chart defaults: job.nodeSelectorExpressions [] and null both clear the role filter", () => {
    assert.deepEqual(
      mergeValues(chartDefaults(), { job: { nodeSelectorExpressions: [] } }).job?.nodeSelectorExpressions,
      [],
    );
    const nulled = mergeValues(chartDefaults(), { job: { nodeSelectorExpressions: null } }).job ?? {};
    assert.equal("nodeSelectorExpressions" in nulled, false);
    assert.equal(nulled.parallelism, 100);
  });
});
