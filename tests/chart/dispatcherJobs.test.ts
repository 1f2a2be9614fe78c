import assert from "node:assert/strict";
import {
  BUNDLED_DISPATCHER_IMAGE,
  dispatcherJob,
  dispatcherPodReaderRole,
  dispatcherPodReaderRoleBinding,
  dispatcherScriptConfigMap,
  dispatcherScriptConfigMapName,
} from "../../chart/dispatcherJobs";
import { chartNames } from "../../chart/names";
import { renderChart, withoutHookAnnotations } from "../../chart/render";

const release = { name: "kata", namespace: "kube-system" };
const sha256 = "ab".repeat(32);
const bundle = { configMapName: "kata-deploy-dispatcher-script", entry: "dispatcher.js", sha256 };

/** Every JSON path where two values differ, with what each side holds ("<absent>" when missing). */
function structuralDiff(a: unknown, b: unknown, path = "$"): Record<string, [unknown, unknown]> {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const out: Record<string, [unknown, unknown]> = {};
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const sub = Array.isArray(a) ? `${path}[${key}]` : `${path}.${key}`;
      if (!(key in a)) out[sub] = ["<absent>", b[key]];
      else if (!(key in b)) out[sub] = [a[key], "<absent>"];
      else Object.assign(out, structuralDiff(a[key], b[key], sub));
    }
    return out;
  }
  return Object.is(a, b) ? {} : { [path]: [a, b] };
}

describe("chart/dispatcherJobs", () => {
  const values = { deploymentMode: "job", env: { multiInstallSuffix: "dev" }, job: { nodes: ["w1", "w2"] } };

  it("upstream = the chart's hook Job minus the hook annotations, for both stages", () => {
    for (const stage of ["install", "cleanup"] as const) {
      const chart = renderChart(values, release).hooks[
        stage === "install" ? "installDispatcher" : "cleanupDispatcher"
      ];
      assert.ok(chart);
      const job = dispatcherJob(stage, values, release, "upstream");
      assert.deepEqual(job, withoutHookAnnotations(chart));
      assert.equal(job.metadata.annotations, undefined);
      assert.equal(
        job.spec.template.spec.containers[0].image,
        "quay.io/kata-containers/kata-deploy-job-dispatcher:4.0.0",
      );
    }
  });

  it("bundled differs from upstream only in image, command, the script volume and mount, and the hash annotation", () => {
    for (const stage of ["install", "cleanup"] as const) {
      const upstream = dispatcherJob(stage, values, release, "upstream");
      const bundled = dispatcherJob(stage, values, release, "bundled", bundle);
      const c = "$.spec.template.spec.containers[0]";
      const flags = (upstream.spec.template.spec.containers[0].command ?? []).slice(1);
      assert.deepEqual(structuralDiff(upstream, bundled), {
        [`${c}.image`]: [
          "quay.io/kata-containers/kata-deploy-job-dispatcher:4.0.0",
          "node:22.23.3-bookworm-slim",
        ],
        [`${c}.command[0]`]: ["/usr/bin/kata-deploy-job-dispatcher", "node"],
        ...Object.fromEntries(
          [...flags, "<absent>"].map((flag, i) => [
            `${c}.command[${i + 1}]`,
            [flag, i === 0 ? "/opt/kata-dispatcher/dispatcher.js" : flags[i - 1]],
          ]),
        ),
        [`${c}.env[1]`]: ["<absent>", { name: "NODE_OPTIONS", value: "--max-old-space-size=256" }],
        [`${c}.volumeMounts[1]`]: [
          "<absent>",
          { name: "dispatcher-script", mountPath: "/opt/kata-dispatcher", readOnly: true },
        ],
        ["$.spec.template.spec.volumes[1]"]: [
          "<absent>",
          { name: "dispatcher-script", configMap: { name: "kata-deploy-dispatcher-script" } },
        ],
        ["$.spec.template.metadata.annotations"]: [
          "<absent>",
          { "kata-deploy-pulumi/dispatcher-sha256": sha256 },
        ],
      });
      // Said plainly: node runs the entry with exactly the chart's flags.
      assert.deepEqual(bundled.spec.template.spec.containers[0].command, [
        "node",
        "/opt/kata-dispatcher/dispatcher.js",
        ...flags,
      ]);
      assert.equal(BUNDLED_DISPATCHER_IMAGE, "node:22.23.3-bookworm-slim");
    }
  });

  it("bundled takes an image override for mirrors", () => {
    const job = dispatcherJob("install", values, release, "bundled", {
      ...bundle,
      image: "mirror.example/node@sha256:1",
    });
    assert.equal(job.spec.template.spec.containers[0].image, "mirror.example/node@sha256:1");
  });

  it("refuses what cannot work, naming the field", () => {
    assert.throws(
      () => dispatcherJob("install", {}, release, "upstream"),
      /deploymentMode: "daemonset" renders no install dispatcher/,
    );
    assert.throws(
      () => dispatcherJob("install", values, release, "bundled"),
      /bundle: the bundled dispatcher needs/,
    );
    assert.throws(
      () => dispatcherJob("install", values, release, "bundled", { ...bundle, entry: "../x.js" }),
      /bundle\.entry/,
    );
    assert.throws(
      () => dispatcherJob("install", values, release, "bundled", { ...bundle, sha256: "xyz" }),
      /bundle\.sha256/,
    );
    assert.throws(
      () => dispatcherJob("install", values, release, "bundled", { ...bundle, configMapName: "Bad_Name" }),
      /bundle\.configMapName/,
    );
  });

  it("the script ConfigMap carries the files, the hash, and stays within 1 MiB", () => {
    const names = chartNames("dev");
    const cm = dispatcherScriptConfigMap(
      { files: { "dispatcher.js": "console.log(1)\n" }, entry: "dispatcher.js", sha256 },
      names,
      release,
    );
    assert.equal(cm.metadata.name, "kata-deploy-dev-dispatcher-script");
    assert.equal(cm.metadata.name, dispatcherScriptConfigMapName(names));
    assert.equal(cm.metadata.namespace, "kube-system");
    assert.deepEqual(cm.data, { "dispatcher.js": "console.log(1)\n" });
    assert.equal(cm.metadata.annotations?.["kata-deploy-pulumi/dispatcher-sha256"], sha256);
    assert.throws(
      () =>
        dispatcherScriptConfigMap(
          { files: { "d.js": "x".repeat(1024 * 1024) }, entry: "d.js", sha256 },
          names,
          release,
        ),
      /exceed the 1 MiB/,
    );
    assert.throws(
      () => dispatcherScriptConfigMap({ files: { "d.js": "" }, entry: "main.js", sha256 }, names, release),
      /bundle\.entry: "main\.js" is not one of/,
    );
  });

  it("dispatcher reader Role and RoleBinding: pods get/list and jobs get/list/watch in the release namespace, bound to the dispatcher SA", () => {
    const names = chartNames("dev");
    const role = dispatcherPodReaderRole(names, release);
    assert.deepEqual(role.metadata, {
      name: "kata-deploy-dev-dispatcher-pod-reader",
      namespace: "kube-system",
    });
    assert.equal(role.kind, "Role");
    assert.deepEqual(role.rules, [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
      { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch"] },
    ]);
    const binding = dispatcherPodReaderRoleBinding(names, release);
    assert.deepEqual(binding.metadata, {
      name: "kata-deploy-dev-dispatcher-pod-reader",
      namespace: "kube-system",
    });
    assert.deepEqual(binding.roleRef, {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "kata-deploy-dev-dispatcher-pod-reader",
    });
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: "kata-deploy-dispatcher-sa-dev", namespace: "kube-system" },
    ]);
  });
});
