import assert from "node:assert/strict";
import { parse } from "yaml";
import { renderChart } from "../../chart/render";
import type { ConfigMap, Job } from "../../chart/k8s";

// Golden expectations written by hand from kata-deploy-chart.md §1.10 (default shims and arches), §3.1 (sorted
// shim lists, joins), §3.3 (commonEnv order, OLD variables), §4 (OLD per-node Job template) and §2.2 (OLD mounts).
const release = { name: "kata", namespace: "kube-system" };

const SHIMS_X86_64 = [
  "clh",
  "clh-azure",
  "clh-azure-runtime-rs",
  "clh-runtime-rs",
  "dragonball",
  "fc",
  "qemu",
  "qemu-coco-dev",
  "qemu-coco-dev-runtime-rs",
  "qemu-nvidia-cpu",
  "qemu-nvidia-cpu-runtime-rs",
  "qemu-nvidia-gpu",
  "qemu-nvidia-gpu-runtime-rs",
  "qemu-nvidia-gpu-snp",
  "qemu-nvidia-gpu-snp-runtime-rs",
  "qemu-nvidia-gpu-tdx",
  "qemu-nvidia-gpu-tdx-runtime-rs",
  "qemu-runtime-rs",
  "qemu-snp",
  "qemu-snp-runtime-rs",
  "qemu-tdx",
  "qemu-tdx-runtime-rs",
].join(" ");
// The confidential shims on amd64: nydus snapshotter and crio.guestPull true.
const CONFIDENTIAL_X86_64 = [
  "qemu-coco-dev",
  "qemu-coco-dev-runtime-rs",
  "qemu-nvidia-gpu-snp",
  "qemu-nvidia-gpu-snp-runtime-rs",
  "qemu-nvidia-gpu-tdx",
  "qemu-nvidia-gpu-tdx-runtime-rs",
  "qemu-snp",
  "qemu-snp-runtime-rs",
  "qemu-tdx",
  "qemu-tdx-runtime-rs",
];
const CONFIDENTIAL_S390X = ["qemu-coco-dev", "qemu-coco-dev-runtime-rs", "qemu-se", "qemu-se-runtime-rs"];

const DEFAULT_ENV = [
  { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
  { name: "DAEMONSET_NAME", value: "kata-deploy" },
  { name: "DEBUG", value: "false" },
  { name: "SHIMS_X86_64", value: SHIMS_X86_64 },
  {
    name: "SHIMS_AARCH64",
    value:
      "qemu qemu-coco-dev-runtime-rs qemu-nvidia-cpu qemu-nvidia-cpu-runtime-rs qemu-nvidia-gpu-runtime-rs qemu-runtime-rs",
  },
  {
    name: "SHIMS_S390X",
    value: "qemu qemu-coco-dev qemu-coco-dev-runtime-rs qemu-runtime-rs qemu-se qemu-se-runtime-rs",
  },
  { name: "SHIMS_PPC64LE", value: "qemu" },
  { name: "DEFAULT_SHIM_X86_64", value: "qemu-runtime-rs" },
  { name: "DEFAULT_SHIM_AARCH64", value: "qemu-runtime-rs" },
  { name: "DEFAULT_SHIM_S390X", value: "qemu-runtime-rs" },
  { name: "DEFAULT_SHIM_PPC64LE", value: "qemu" },
  {
    name: "SNAPSHOTTER_HANDLER_MAPPING_X86_64",
    value: ["fc:devmapper", ...CONFIDENTIAL_X86_64.map((s) => `${s}:nydus`)].join(","),
  },
  { name: "SNAPSHOTTER_HANDLER_MAPPING_AARCH64", value: "qemu-coco-dev-runtime-rs:nydus" },
  { name: "SNAPSHOTTER_HANDLER_MAPPING_S390X", value: CONFIDENTIAL_S390X.map((s) => `${s}:nydus`).join(",") },
  { name: "PULL_TYPE_MAPPING_X86_64", value: CONFIDENTIAL_X86_64.map((s) => `${s}:guest-pull`).join(",") },
  { name: "PULL_TYPE_MAPPING_AARCH64", value: "qemu-coco-dev-runtime-rs:guest-pull" },
  { name: "PULL_TYPE_MAPPING_S390X", value: CONFIDENTIAL_S390X.map((s) => `${s}:guest-pull`).join(",") },
  { name: "INSTALLATION_PREFIX", value: "" },
  { name: "MULTI_INSTALL_SUFFIX", value: "" },
  { name: "EXPERIMENTAL_SETUP_SNAPSHOTTER", value: "nydus" },
];

const HOST_MOUNTS = [
  { name: "crio-conf", mountPath: "/etc/crio/" },
  { name: "containerd-conf", mountPath: "/etc/containerd/" },
  { name: "host", mountPath: "/host/" },
];
const HOST_VOLUMES = [
  { name: "crio-conf", hostPath: { path: "/etc/crio/" } },
  { name: "containerd-conf", hostPath: { path: "/etc/containerd/" } },
  { name: "host", hostPath: { path: "/" } },
];

function stage(name: string, action: string, privileged: boolean, mounts: boolean) {
  return {
    name,
    image: "quay.io/kata-containers/kata-deploy:4.0.0",
    imagePullPolicy: "Always",
    command: ["/usr/bin/kata-deploy", action],
    env: DEFAULT_ENV,
    securityContext: { privileged },
    ...(mounts ? { volumeMounts: HOST_MOUNTS } : {}),
  };
}

function expectedTemplate(stageName: "install" | "cleanup") {
  const labels = {
    "app.kubernetes.io/name": "kata-deploy",
    "app.kubernetes.io/instance": "kata",
    "kata-deploy/stage": stageName,
  };
  const pipeline =
    stageName === "install"
      ? {
          initContainers: [
            stage("host-check", "install-stage-host-check", true, true),
            stage("artifacts", "install-stage-artifacts", true, true),
            stage("cri", "install-stage-cri", true, true),
          ],
          containers: [stage("label", "install-stage-label", false, false)],
        }
      : {
          initContainers: [
            stage("unlabel", "cleanup-stage-unlabel", false, false),
            stage("revert-cri", "cleanup-stage-revert-cri", true, true),
          ],
          containers: [stage("remove-artifacts", "cleanup-stage-remove-artifacts", true, true)],
        };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { labels },
    spec: {
      backoffLimit: 3,
      ttlSecondsAfterFinished: 600,
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: "kata-deploy-sa",
          restartPolicy: "Never",
          hostPID: true,
          priorityClassName: "system-node-critical",
          ...pipeline,
          volumes: HOST_VOLUMES,
        },
      },
    },
  };
}

function templatesConfigMap(values: Record<string, unknown>): ConfigMap {
  // parseYaml is only needed for custom RuntimeClasses, which one case below enables.
  const cm = renderChart({ deploymentMode: "job", ...values }, release, {
    parseYaml: (t) => parse(t),
  }).resources.find((o) => o.kind === "ConfigMap" && o.metadata.name?.endsWith("-job-templates"));
  assert.ok(cm, "the job-templates ConfigMap is rendered in job mode");
  return cm as ConfigMap;
}

function parsedTemplate(cm: ConfigMap, key: string, version: "1.1" | "1.2" = "1.2"): Job {
  return parse(cm.data[key], { version }) as Job;
}

describe("chart/render: job-templates ConfigMap (job mode, default values)", () => {
  it("is named, namespaced and labelled as the chart does, with exactly the two keys", () => {
    const cm = templatesConfigMap({});
    assert.deepEqual(cm.metadata, {
      name: "kata-deploy-job-templates",
      namespace: "kube-system",
      labels: { "app.kubernetes.io/name": "kata-deploy", "app.kubernetes.io/instance": "kata" },
    });
    assert.deepEqual(Object.keys(cm.data).sort(), ["cleanup-job.yaml", "install-job.yaml"]);
  });

  it("install-job.yaml is the OLD install pipeline, exactly", () => {
    const cm = templatesConfigMap({});
    assert.deepEqual(parsedTemplate(cm, "install-job.yaml"), expectedTemplate("install"));
    // A YAML 1.1 reader (Go's yaml.v2) reads the same data.
    assert.deepEqual(parsedTemplate(cm, "install-job.yaml", "1.1"), expectedTemplate("install"));
  });

  it("cleanup-job.yaml is the OLD cleanup pipeline, exactly", () => {
    const cm = templatesConfigMap({});
    assert.deepEqual(parsedTemplate(cm, "cleanup-job.yaml"), expectedTemplate("cleanup"));
    assert.deepEqual(parsedTemplate(cm, "cleanup-job.yaml", "1.1"), expectedTemplate("cleanup"));
  });

  it("the template carries no node identity and no hook annotation", () => {
    const job = parsedTemplate(templatesConfigMap({}), "install-job.yaml");
    assert.equal(job.metadata.name, undefined);
    assert.equal(job.metadata.annotations, undefined);
    assert.equal(job.spec.template.spec.nodeName, undefined);
  });
});

describe("chart/render: job templates follow the values", () => {
  const env = (values: Record<string, unknown>, container = 0) => {
    const job = parsedTemplate(templatesConfigMap(values), "install-job.yaml");
    return Object.fromEntries(
      (job.spec.template.spec.initContainers?.[container].env ?? []).map((e) => [
        e.name,
        e.value ?? e.valueFrom,
      ]),
    );
  };

  it("disableAll plus one shim: only that shim, only on its arches; defaults dropped where it is absent", () => {
    const e = env({ shims: { disableAll: true, "qemu-nvidia-cpu": { enabled: true } } });
    assert.equal(e.SHIMS_X86_64, "qemu-nvidia-cpu");
    assert.equal(e.SHIMS_AARCH64, "qemu-nvidia-cpu");
    assert.equal("SHIMS_S390X" in e, false);
    assert.equal("SHIMS_PPC64LE" in e, false);
    // defaultShim is qemu-runtime-rs (qemu on ppc64le), both now disabled: no DEFAULT_SHIM_* at all.
    assert.equal(
      Object.keys(e).some((k) => k.startsWith("DEFAULT_SHIM_")),
      false,
    );
    assert.equal(
      Object.keys(e).some((k) => k.startsWith("SNAPSHOTTER_HANDLER_MAPPING_")),
      false,
    );
  });

  it("annotations, proxies, forced guest pull, suffix, prefix, debug, hostOS, config file name", () => {
    const e = env({
      debug: true,
      env: { multiInstallSuffix: "dev", installationPrefix: "/opt/x", hostOS: "cbl-mariner" },
      containerd: { configFileName: "  my.toml  " },
      snapshotter: { setup: ["nydus", "erofs"] },
      shims: {
        disableAll: true,
        qemu: { enabled: true, allowedHypervisorAnnotations: ["default_vcpus", "default_memory"] },
        "qemu-snp": {
          enabled: true,
          containerd: { forceGuestPull: true },
          agent: { httpsProxy: "http://p:3128", noProxy: "10.0.0.0/8" },
        },
      },
    });
    assert.equal(e.DAEMONSET_NAME, "kata-deploy-dev");
    assert.equal(e.DEBUG, "true");
    assert.equal(e.ALLOWED_HYPERVISOR_ANNOTATIONS_X86_64, "qemu:default_vcpus,default_memory");
    assert.equal(e.ALLOWED_HYPERVISOR_ANNOTATIONS_PPC64LE, "qemu:default_vcpus,default_memory");
    assert.equal(e.AGENT_HTTPS_PROXY, "qemu-snp=http://p:3128");
    assert.equal(e.AGENT_NO_PROXY, "qemu-snp=10.0.0.0/8");
    assert.equal(e.EXPERIMENTAL_FORCE_GUEST_PULL_X86_64, "qemu-snp");
    assert.equal(e.PULL_TYPE_MAPPING_X86_64, "qemu-snp:guest-pull");
    assert.equal(e.SNAPSHOTTER_HANDLER_MAPPING_X86_64, "qemu-snp:nydus");
    assert.equal(e.MULTI_INSTALL_SUFFIX, "dev");
    assert.equal(e.INSTALLATION_PREFIX, "/opt/x");
    assert.equal(e.HOST_OS, "cbl-mariner");
    assert.equal(e.CONTAINERD_CONFIG_FILE_NAME, "my.toml");
    assert.equal(e.EXPERIMENTAL_SETUP_SNAPSHOTTER, "nydus,erofs");
  });

  it("commonEnv order is the chart's", () => {
    const job = parsedTemplate(
      templatesConfigMap({
        env: { hostOS: "h" },
        containerd: { configFileName: "c.toml", userDropIn: "[x]\n" },
        shims: {
          qemu: {
            containerd: { forceGuestPull: true },
            agent: { httpsProxy: "p", noProxy: "n" },
            allowedHypervisorAnnotations: ["a"],
          },
        },
        customRuntimes: {
          enabled: true,
          runtimes: { r: { baseConfig: "qemu", runtimeClass: "handler: kata-r\n" } },
        },
      }),
      "install-job.yaml",
    );
    const order = (job.spec.template.spec.initContainers?.[0].env ?? []).map((e) =>
      e.name.replace(/_(X86_64|AARCH64|S390X|PPC64LE)$/, "_<A>"),
    );
    const collapsed = order.filter((name, i) => name !== order[i - 1]);
    assert.deepEqual(collapsed, [
      "NODE_NAME",
      "DAEMONSET_NAME",
      "DEBUG",
      "SHIMS_<A>",
      "DEFAULT_SHIM_<A>",
      "ALLOWED_HYPERVISOR_ANNOTATIONS_<A>",
      "SNAPSHOTTER_HANDLER_MAPPING_<A>",
      "AGENT_HTTPS_PROXY",
      "AGENT_NO_PROXY",
      "PULL_TYPE_MAPPING_<A>",
      "INSTALLATION_PREFIX",
      "MULTI_INSTALL_SUFFIX",
      "EXPERIMENTAL_SETUP_SNAPSHOTTER",
      "EXPERIMENTAL_FORCE_GUEST_PULL_<A>",
      "CONTAINERD_CONFIG_FILE_NAME",
      "CONTAINERD_USER_DROP_IN_SOURCE_FILE",
      "HOST_OS",
      "CUSTOM_RUNTIMES_ENABLED",
    ]);
  });

  it("pod settings come from values: pull secrets, tolerations, priority class, backoff, ttl, distro path", () => {
    const tolerations = [{ key: "dedicated", operator: "Equal", value: "kata", effect: "NoSchedule" }];
    const cm = templatesConfigMap({
      imagePullSecrets: [{ name: "regcred" }],
      tolerations,
      priorityClassName: "",
      imagePullPolicy: "IfNotPresent",
      image: { reference: "reg.example/kata-deploy", tag: "3.99" },
      k8sDistribution: "k3s",
      env: { multiInstallSuffix: "dev" },
      job: { backoffLimit: 1, ttlSecondsAfterFinished: 120 },
    });
    assert.equal(cm.metadata.name, "kata-deploy-dev-job-templates");
    for (const key of ["install-job.yaml", "cleanup-job.yaml"]) {
      const job = parsedTemplate(cm, key);
      const pod = job.spec.template.spec;
      assert.equal(job.spec.backoffLimit, 1);
      assert.equal(job.spec.ttlSecondsAfterFinished, 120);
      assert.deepEqual(pod.imagePullSecrets, [{ name: "regcred" }]);
      assert.deepEqual(pod.tolerations, tolerations);
      assert.equal("priorityClassName" in pod, false);
      assert.equal(pod.serviceAccountName, "kata-deploy-sa-dev");
      assert.equal(pod.containers[0].image, "reg.example/kata-deploy:3.99");
      assert.equal(pod.containers[0].imagePullPolicy, "IfNotPresent");
      assert.deepEqual(pod.volumes?.[1], {
        name: "containerd-conf",
        hostPath: { path: "/var/lib/rancher/k3s/agent/etc/containerd/" },
      });
    }
  });

  it("optional ConfigMap mounts appear on host-mounting stages only, with their volumes", () => {
    const cm = templatesConfigMap({
      containerd: { userDropIn: "[plugins]\n" },
      shims: { qemu: { dropIn: "[hypervisor.qemu]\n" } },
    });
    const pod = parsedTemplate(cm, "install-job.yaml").spec.template.spec;
    assert.deepEqual(pod.initContainers?.[0].volumeMounts?.slice(3), [
      { name: "custom-containerd-config", mountPath: "/custom-containerd-config/", readOnly: true },
      { name: "custom-configs", mountPath: "/custom-configs/", readOnly: true },
    ]);
    assert.equal(pod.containers[0].volumeMounts, undefined);
    assert.deepEqual(pod.volumes?.slice(3), [
      { name: "custom-containerd-config", configMap: { name: "kata-deploy-containerd-user-dropin" } },
      { name: "custom-configs", configMap: { name: "kata-deploy-custom-configs" } },
    ]);
  });

  it("an image digest is used verbatim", () => {
    const job = parsedTemplate(
      templatesConfigMap({ image: { reference: "r/kd@sha256:abc", tag: "ignored" } }),
      "install-job.yaml",
    );
    assert.equal(job.spec.template.spec.containers[0].image, "r/kd@sha256:abc");
  });

  it("rejects a shim `enabled` that is neither boolean nor null, naming the field", () => {
    assert.throws(() => templatesConfigMap({ shims: { qemu: { enabled: "yes" } } }), /shims\.qemu\.enabled/);
  });
});
