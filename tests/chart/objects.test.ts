import assert from "node:assert/strict";
import { parse } from "yaml";
import { renderChart, type RenderedChart } from "../../chart/render";
import type { DaemonSet, K8sObject, RoleLike, RuntimeClass } from "../../chart/k8s";

// Expectations by hand from kata-deploy-chart.md §2.1-§2.5 and §6 (OLD column).
const release = { name: "kata", namespace: "kube-system" };

function find(r: RenderedChart, kind: string, name: string): K8sObject {
  const o = r.resources.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} is rendered`);
  return o;
}
const kindsAndNames = (r: RenderedChart) =>
  r.resources.filter((o) => o.kind !== "RuntimeClass").map((o) => `${o.kind}/${o.metadata.name}`);

describe("chart/render: RBAC", () => {
  it("job mode: the kata identity (kept) and the dispatcher identity, verbs exactly", () => {
    const r = renderChart({ deploymentMode: "job" }, release);
    assert.deepEqual(kindsAndNames(r).sort(), [
      "ClusterRole/kata-deploy-dispatcher-noderole",
      "ClusterRole/kata-deploy-role",
      "ClusterRoleBinding/kata-deploy-dispatcher-noderb",
      "ClusterRoleBinding/kata-deploy-rb",
      "ConfigMap/kata-deploy-job-templates",
      "Role/kata-deploy-dispatcher-role",
      "RoleBinding/kata-deploy-dispatcher-rb",
      "ServiceAccount/kata-deploy-dispatcher-sa",
      "ServiceAccount/kata-deploy-sa",
    ]);
    assert.deepEqual((find(r, "ClusterRole", "kata-deploy-dispatcher-noderole") as RoleLike).rules, [
      { apiGroups: [""], resources: ["nodes"], verbs: ["list"] },
    ]);
    assert.deepEqual((find(r, "Role", "kata-deploy-dispatcher-role") as RoleLike).rules, [
      { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get", "delete"] },
    ]);
    assert.equal(find(r, "Role", "kata-deploy-dispatcher-role").metadata.namespace, "kube-system");
    assert.deepEqual((find(r, "ClusterRole", "kata-deploy-role") as RoleLike).rules, [
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] },
      { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
      { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: ["get", "list", "patch"] },
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "list"],
      },
      {
        apiGroups: ["nfd.k8s-sigs.io"],
        resources: ["nodefeaturerules"],
        verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
      },
      { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get", "list", "watch"] },
    ]);
    for (const [kind, name] of [
      ["ServiceAccount", "kata-deploy-sa"],
      ["ClusterRole", "kata-deploy-role"],
      ["ClusterRoleBinding", "kata-deploy-rb"],
    ]) {
      assert.deepEqual(find(r, kind, name).metadata.annotations, { "helm.sh/resource-policy": "keep" });
    }
    const sa = find(r, "ServiceAccount", "kata-deploy-dispatcher-sa");
    assert.deepEqual(sa.metadata, { name: "kata-deploy-dispatcher-sa", namespace: "kube-system" });
    const subject = { kind: "ServiceAccount", name: "kata-deploy-dispatcher-sa", namespace: "kube-system" };
    assert.deepEqual(find(r, "ClusterRoleBinding", "kata-deploy-dispatcher-noderb").roleRef, {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "kata-deploy-dispatcher-noderole",
    });
    assert.deepEqual(find(r, "ClusterRoleBinding", "kata-deploy-dispatcher-noderb").subjects, [subject]);
    assert.deepEqual(find(r, "RoleBinding", "kata-deploy-dispatcher-rb").roleRef, {
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "kata-deploy-dispatcher-role",
    });
    assert.deepEqual(find(r, "RoleBinding", "kata-deploy-dispatcher-rb").subjects, [subject]);
    assert.deepEqual(find(r, "ClusterRoleBinding", "kata-deploy-rb").subjects, [
      { kind: "ServiceAccount", name: "kata-deploy-sa", namespace: "kube-system" },
    ]);
  });

  it("daemonset mode: the kata identity and the DaemonSet, no dispatcher objects; suffixes on every name", () => {
    assert.deepEqual(kindsAndNames(renderChart({ env: { multiInstallSuffix: "dev" } }, release)), [
      "ServiceAccount/kata-deploy-sa-dev",
      "ClusterRole/kata-deploy-role-dev",
      "ClusterRoleBinding/kata-deploy-rb-dev",
      "DaemonSet/kata-deploy-dev",
    ]);
  });
});

describe("chart/render: RuntimeClasses", () => {
  const classes = (values: Record<string, unknown> = {}, options = {}) =>
    renderChart(values, release, options).resources.filter(
      (o): o is RuntimeClass => o.kind === "RuntimeClass",
    );

  it("one per enabled shim of the overhead table (remote is disabled), name = handler = kata-<shim>", () => {
    const rcs = classes();
    const expected: Record<string, [string, string]> = {
      clh: ["130Mi", "250m"],
      "clh-azure": ["130Mi", "250m"],
      "clh-azure-runtime-rs": ["130Mi", "250m"],
      "clh-runtime-rs": ["130Mi", "250m"],
      dragonball: ["130Mi", "250m"],
      fc: ["130Mi", "250m"],
      qemu: ["320Mi", "250m"],
      "qemu-coco-dev": ["160Mi", "250m"],
      "qemu-coco-dev-runtime-rs": ["320Mi", "250m"],
      "qemu-nvidia-cpu": ["320Mi", "250m"],
      "qemu-nvidia-cpu-runtime-rs": ["320Mi", "250m"],
      "qemu-nvidia-gpu": ["10240Mi", "1.0"],
      "qemu-nvidia-gpu-runtime-rs": ["10240Mi", "1.0"],
      "qemu-nvidia-gpu-snp": ["10240Mi", "1.0"],
      "qemu-nvidia-gpu-snp-runtime-rs": ["10240Mi", "1.0"],
      "qemu-nvidia-gpu-tdx": ["10240Mi", "1.0"],
      "qemu-nvidia-gpu-tdx-runtime-rs": ["10240Mi", "1.0"],
      "qemu-runtime-rs": ["320Mi", "250m"],
      "qemu-se": ["1024Mi", "1.0"],
      "qemu-se-runtime-rs": ["1024Mi", "1.0"],
      "qemu-snp": ["2048Mi", "1.0"],
      "qemu-snp-runtime-rs": ["2048Mi", "1.0"],
      "qemu-tdx": ["2048Mi", "1.0"],
      "qemu-tdx-runtime-rs": ["2048Mi", "1.0"],
    };
    assert.deepEqual(
      rcs.map((rc) => rc.metadata.name),
      Object.keys(expected).map((s) => `kata-${s}`),
    );
    for (const rc of rcs) {
      const shim = (rc.metadata.name as string).slice("kata-".length);
      assert.equal(rc.handler, rc.metadata.name);
      assert.deepEqual(rc.overhead, { podFixed: { memory: expected[shim][0], cpu: expected[shim][1] } });
      assert.deepEqual(rc.metadata.labels, {
        "app.kubernetes.io/managed-by": "kata-deploy",
        "kata-deploy/instance": "default",
      });
      assert.deepEqual(rc.metadata.annotations, { "katacontainers.io/kata-version": "4.0.0" });
    }
    assert.deepEqual(rcs.find((rc) => rc.metadata.name === "kata-qemu")?.scheduling, {
      nodeSelector: { "katacontainers.io/kata-runtime": "true" },
    });
    assert.deepEqual(
      rcs.find((rc) => rc.metadata.name === "kata-qemu-nvidia-gpu-snp")?.scheduling?.nodeSelector,
      {
        "katacontainers.io/kata-runtime": "true",
        "amd.feature.node.kubernetes.io/snp": "true",
        "nvidia.com/cc.ready.state": "true",
      },
    );
    // Without NFD, a pure TEE shim gets no automatic feature label.
    assert.deepEqual(rcs.find((rc) => rc.metadata.name === "kata-qemu-se")?.scheduling?.nodeSelector, {
      "katacontainers.io/kata-runtime": "true",
    });
  });

  it("with NFD (enabled or found), pure TEE shims select their feature label", () => {
    const byName = (rcs: RuntimeClass[], n: string) =>
      rcs.find((rc) => rc.metadata.name === n)?.scheduling?.nodeSelector;
    for (const rcs of [
      classes({ "node-feature-discovery": { enabled: true } }),
      classes({}, { externalNfdNamespace: "nfd" }),
    ]) {
      assert.deepEqual(byName(rcs, "kata-qemu-se-runtime-rs"), {
        "katacontainers.io/kata-runtime": "true",
        "feature.node.kubernetes.io/cpu-security.se.enabled": "true",
      });
      assert.deepEqual(byName(rcs, "kata-qemu-tdx"), {
        "katacontainers.io/kata-runtime": "true",
        "intel.feature.node.kubernetes.io/tdx": "true",
      });
      assert.deepEqual(byName(rcs, "kata-qemu"), { "katacontainers.io/kata-runtime": "true" });
    }
  });

  it("suffix, default class, overhead switches and overrides", () => {
    const suffixed = classes({
      env: { multiInstallSuffix: "dev" },
      runtimeClasses: { createDefault: true },
      shims: { disableAll: true, qemu: { enabled: true } },
    });
    assert.deepEqual(
      suffixed.map((rc) => [rc.metadata.name, rc.handler, rc.metadata.labels?.["kata-deploy/instance"]]),
      [["kata-qemu-dev", "kata-qemu-dev", "dev"]],
    );
    const withDefault = classes({
      runtimeClasses: { createDefault: true },
      defaultShim: { amd64: "qemu" },
      shims: { disableAll: true, qemu: { enabled: true }, fc: { enabled: true } },
    });
    assert.deepEqual(
      withDefault.map((rc) => [rc.metadata.name, rc.handler]),
      [
        ["kata-fc", "kata-fc"],
        ["kata-qemu", "kata-qemu"],
        ["kata", "kata-qemu"],
      ],
    );
    const noOverhead = classes({
      runtimeClasses: { overheadEnabled: false },
      shims: {
        disableAll: true,
        qemu: { enabled: true },
        fc: { enabled: true, runtimeClass: { overheadEnabled: true, overhead: { memory: "1Gi" } } },
      },
    });
    assert.deepEqual(
      noOverhead.map((rc) => rc.overhead),
      [{ podFixed: { memory: "1Gi", cpu: "250m" } }, undefined],
    );
    assert.deepEqual(classes({ runtimeClasses: { enabled: false } }), []);
    // A shim outside the overhead table gets no RuntimeClass.
    assert.deepEqual(
      classes({ shims: { disableAll: true, "my-shim": { enabled: true, supportedArches: ["amd64"] } } }),
      [],
    );
  });
});

describe("chart/render: DaemonSet (daemonset mode, OLD)", () => {
  const ds = (values: Record<string, unknown> = {}) => {
    const d = renderChart(values, release).resources.find((o): o is DaemonSet => o.kind === "DaemonSet");
    assert.ok(d);
    return d;
  };

  it("default object", () => {
    const d = ds();
    assert.deepEqual(d.metadata, { name: "kata-deploy", namespace: "kube-system" });
    assert.deepEqual(d.spec.selector, { matchLabels: { name: "kata-deploy" } });
    assert.deepEqual(d.spec.template.metadata, { labels: { name: "kata-deploy" } });
    assert.deepEqual(d.spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, "kata-deploy-sa");
    assert.equal(pod.hostPID, true);
    assert.equal(pod.terminationGracePeriodSeconds, 600);
    assert.equal(pod.priorityClassName, "system-node-critical");
    assert.equal(pod.nodeSelector, undefined);
    assert.equal(pod.affinity, undefined);
    const c = pod.containers[0];
    assert.equal(c.name, "kube-kata");
    assert.equal(c.image, "quay.io/kata-containers/kata-deploy:4.0.0");
    assert.deepEqual(c.command, ["/usr/bin/kata-deploy", "install"]);
    assert.deepEqual(c.securityContext, { privileged: true });
    assert.deepEqual(c.env?.at(-1), { name: "HEALTH_PORT", value: "8090" });
    assert.deepEqual(
      c.env?.find((e) => e.name === "SHIMS_PPC64LE"),
      { name: "SHIMS_PPC64LE", value: "qemu" },
    );
    assert.deepEqual(c.startupProbe, {
      httpGet: { path: "/readyz", port: 8090 },
      initialDelaySeconds: 1,
      periodSeconds: 10,
      failureThreshold: 60,
      timeoutSeconds: 3,
    });
    assert.deepEqual(c.livenessProbe, {
      httpGet: { path: "/healthz", port: 8090 },
      periodSeconds: 30,
      failureThreshold: 3,
      timeoutSeconds: 3,
    });
    assert.deepEqual(c.readinessProbe, {
      httpGet: { path: "/readyz", port: 8090 },
      periodSeconds: 10,
      failureThreshold: 3,
      timeoutSeconds: 3,
    });
    assert.deepEqual(c.resources, { requests: { cpu: "25m", memory: "16Mi" } });
    assert.deepEqual(c.volumeMounts, [
      { name: "crio-conf", mountPath: "/etc/crio/" },
      { name: "containerd-conf", mountPath: "/etc/containerd/" },
      { name: "host", mountPath: "/host/" },
    ]);
  });

  it("values reach the pod: nodeSelector, tolerations, log level, debug, distro, NFD affinity", () => {
    const d = ds({
      nodeSelector: { "kata-containers": "enabled" },
      tolerations: [{ operator: "Exists" }],
      debug: true,
      k8sDistribution: "rke2",
      "node-feature-discovery": { enabled: true },
    });
    const pod = d.spec.template.spec;
    assert.deepEqual(pod.nodeSelector, { "kata-containers": "enabled" });
    assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
    assert.deepEqual(pod.containers[0].command, ["/usr/bin/kata-deploy", "--log-level", "debug", "install"]);
    assert.deepEqual(pod.volumes?.[1], {
      name: "containerd-conf",
      hostPath: { path: "/var/lib/rancher/rke2/agent/etc/containerd/" },
    });
    const terms = (
      pod.affinity as {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: unknown[] } };
      }
    ).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    assert.equal(terms.length, 6);
    assert.deepEqual(terms[2], {
      matchExpressions: [{ key: "kubernetes.io/arch", operator: "In", values: ["arm64", "aarch64"] }],
    });
    assert.deepEqual(ds({ logLevel: " warn ", debug: true }).spec.template.spec.containers[0].command, [
      "/usr/bin/kata-deploy",
      "--log-level",
      "warn",
      "install",
    ]);
  });

  it("NFD enabled while another NFD exists fails as the chart does", () => {
    assert.throws(
      () =>
        renderChart({ "node-feature-discovery": { enabled: true } }, release, {
          externalNfdNamespace: "nfd",
        }),
      /already installed in namespace 'nfd'/,
    );
  });
});

describe("chart/render: optional ConfigMaps and custom runtimes", () => {
  it("user drop-in and shim drop-ins: ConfigMaps with the standard Helm labels", () => {
    const r = renderChart(
      {
        containerd: { userDropIn: "[plugins]\n  x = 1\n\n" },
        shims: { qemu: { dropIn: "[hypervisor.qemu]\n" }, fc: { enabled: false, dropIn: "ignored" } },
      },
      release,
    );
    const labels = {
      "helm.sh/chart": "kata-deploy-4.0.0",
      "app.kubernetes.io/name": "kata-deploy",
      "app.kubernetes.io/instance": "kata",
      "app.kubernetes.io/managed-by": "Helm",
    };
    const user = find(r, "ConfigMap", "kata-deploy-containerd-user-dropin") as K8sObject & {
      data: Record<string, string>;
    };
    assert.deepEqual(user.metadata.labels, labels);
    assert.deepEqual(user.data, { "containerd-user-dropin.toml": "[plugins]\n  x = 1\n" });
    const custom = find(r, "ConfigMap", "kata-deploy-custom-configs") as K8sObject & {
      data: Record<string, string>;
    };
    assert.deepEqual(custom.metadata.labels, labels);
    assert.deepEqual(custom.data, { "dropin-qemu.toml": "[hypervisor.qemu]\n" });
  });

  it("custom runtimes: list, drop-in, env flag and a RuntimeClass inheriting the base overhead", () => {
    const runtimeClass =
      'kind: RuntimeClass\napiVersion: node.k8s.io/v1\nmetadata:\n  name: kata-my-custom-handler\nhandler: kata-my-custom-handler\noverhead:\n  podFixed:\n    memory: "640Mi"\n';
    const values = {
      customRuntimes: {
        enabled: true,
        runtimes: {
          mine: {
            baseConfig: "qemu",
            dropIn: "[hypervisor.qemu]\ndial_timeout = 999\n",
            runtimeClass,
            crio: { pullType: "guest-pull" },
          },
        },
      },
    };
    assert.throws(
      () => renderChart(values, release),
      /customRuntimes\.runtimes\.mine\.runtimeClass: .*parseYaml/,
    );
    const r = renderChart(values, release, { parseYaml: (t) => parse(t) });
    const custom = find(r, "ConfigMap", "kata-deploy-custom-configs") as K8sObject & {
      data: Record<string, string>;
    };
    assert.deepEqual(custom.data, {
      "custom-runtimes.list": "kata-my-custom-handler:qemu::guest-pull\n",
      "dropin-kata-my-custom-handler.toml": "[hypervisor.qemu]\ndial_timeout = 999\n",
    });
    assert.deepEqual(find(r, "RuntimeClass", "kata-my-custom-handler").overhead, {
      podFixed: { memory: "640Mi", cpu: "250m" },
    });
    const ds = r.resources.find((o): o is DaemonSet => o.kind === "DaemonSet");
    assert.deepEqual(
      ds?.spec.template.spec.containers[0].env?.find((e) => e.name === "CUSTOM_RUNTIMES_ENABLED"),
      { name: "CUSTOM_RUNTIMES_ENABLED", value: "true" },
    );
    assert.deepEqual(ds?.spec.template.spec.containers[0].volumeMounts?.at(-1), {
      name: "custom-configs",
      mountPath: "/custom-configs/",
      readOnly: true,
    });
  });

  it("the monitor DaemonSet (never suffixed)", () => {
    const r = renderChart({ monitor: { enabled: true }, env: { multiInstallSuffix: "dev" } }, release);
    const m = find(r, "DaemonSet", "kata-monitor") as DaemonSet;
    assert.equal(m.spec.template.spec.containers[0].image, "quay.io/kata-containers/kata-monitor:4.0.0");
    assert.deepEqual(m.spec.template.spec.containers[0].args, [
      "-listen-address=0.0.0.0:8090",
      "-log-level=info",
      "-runtime-endpoint=unix:///run/containerd/containerd.sock",
    ]);
    assert.equal(m.spec.template.metadata.annotations?.["prometheus.io/scrape"], "true");
  });

  it("names the missing release field", () => {
    assert.throws(() => renderChart({}, { name: "", namespace: "x" }), /release\.name/);
    assert.throws(() => renderChart({}, { name: "r", namespace: "" }), /release\.namespace/);
    assert.throws(
      () => renderChart({}, { name: "Kata", namespace: "x" }),
      /release\.name: "Kata" a lowercase RFC 1123/,
    );
    assert.throws(
      () => renderChart({}, { name: "k".repeat(54), namespace: "x" }),
      /no more than 53 characters/,
    );
    assert.throws(
      () => renderChart({}, { name: "kata", namespace: "kube.system" }),
      /release\.namespace: "kube\.system"/,
    );
    assert.equal(renderChart({}, { name: "k".repeat(53), namespace: "x" }).mode, "daemonset");
  });
});
