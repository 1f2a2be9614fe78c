// Objects of both modes: the kata-deploy identity (§6), RuntimeClasses (§2.5), the optional custom-configs and
// containerd drop-in ConfigMaps, custom RuntimeClasses, and the kata-monitor DaemonSet (§2.1). Node built-ins only.

import { atLeast41, CHART_VERSION, type ChartValues, type ChartVersion } from "./defaults";
import { cloneJson, goPrint, isMap, truthy } from "./goValues";
import type { BindingLike, ConfigMap, DaemonSet, K8sObject, RoleLike, RuntimeClass } from "./k8s";
import { chartNames, KATA_RUNTIME_LABEL } from "./names";
import {
  ChartValuesError,
  containerdRuntimeSocket,
  customConfigsConfigMapName,
  enabledShims,
  hasCustomConfigs,
  hasCustomRuntimes,
  hasUserDropIn,
  imageRef,
  multiInstallSuffix,
  userDropInConfigMapName,
} from "./workload";
import { RESOURCE_POLICY_ANNOTATION, type Release, type RenderOptions } from "./renderTypes";
import {
  blockText,
  compact,
  mergeOverwrite,
  podPlacement,
  printedScalar,
  standardLabels,
  suffixed,
  withValue,
} from "./renderHelpers";

export function kataRbac(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
): K8sObject[] {
  const names = chartNames(multiInstallSuffix(values));
  // Kept by Helm on uninstall so DaemonSet pods keep API access during their SIGTERM cleanup.
  const keep = { [RESOURCE_POLICY_ANNOTATION]: "keep" };
  const serviceAccount: K8sObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: names.serviceAccount, namespace: release.namespace, annotations: { ...keep } },
  };
  const role: RoleLike = {
    kind: "ClusterRole",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.clusterRole, annotations: { ...keep } },
    rules: [
      { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] },
      { apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"] },
      // 4.1.0 renders RuntimeClasses and the NodeFeatureRule from the chart: the pod needs neither right.
      ...(atLeast41(version)
        ? []
        : [
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
          ]),
      { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get", "list", "watch"] },
    ],
  };
  const binding: BindingLike = {
    kind: "ClusterRoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: names.clusterRoleBinding, annotations: { ...keep } },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: names.clusterRole },
    subjects: [{ kind: "ServiceAccount", name: names.serviceAccount, namespace: release.namespace }],
  };
  return [serviceAccount, role, binding];
}

/** Built-in RuntimeClass overhead per shim (chart 4.0.0's table: the QEMU shims at 320Mi). A shim missing here gets no RuntimeClass. */
export const RUNTIME_CLASS_OVERHEAD: Readonly<Record<string, { memory: string; cpu: string }>> = {
  clh: { memory: "130Mi", cpu: "250m" },
  "clh-azure": { memory: "130Mi", cpu: "250m" },
  "clh-runtime-rs": { memory: "130Mi", cpu: "250m" },
  "clh-azure-runtime-rs": { memory: "130Mi", cpu: "250m" },
  "openvmm-azure-runtime-rs": { memory: "130Mi", cpu: "250m" },
  dragonball: { memory: "130Mi", cpu: "250m" },
  fc: { memory: "130Mi", cpu: "250m" },
  qemu: { memory: "320Mi", cpu: "250m" },
  "qemu-coco-dev": { memory: "160Mi", cpu: "250m" },
  "qemu-coco-dev-runtime-rs": { memory: "320Mi", cpu: "250m" },
  "qemu-runtime-rs": { memory: "320Mi", cpu: "250m" },
  "qemu-se-runtime-rs": { memory: "1024Mi", cpu: "1.0" },
  "qemu-se": { memory: "1024Mi", cpu: "1.0" },
  "qemu-snp": { memory: "2048Mi", cpu: "1.0" },
  "qemu-snp-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-nvidia-cpu": { memory: "320Mi", cpu: "250m" },
  "qemu-nvidia-cpu-runtime-rs": { memory: "320Mi", cpu: "250m" },
  "qemu-nvidia-gpu": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  stratovirt: { memory: "130Mi", cpu: "250m" },
  remote: { memory: "120Mi", cpu: "250m" },
};

export function isPureTeeShim(shim: string): boolean {
  const tee =
    shim.includes("snp") || shim.includes("tdx") || shim.endsWith("-se") || shim.endsWith("-se-runtime-rs");
  return tee && !shim.includes("nvidia-gpu");
}

/** The per-install mark 4.1.0's RuntimeClasses select besides the shared label: `kata-deploy.katacontainers.io/<S|default>`. */
export function instanceMarkerLabel(values: ChartValues): string {
  return `kata-deploy.katacontainers.io/${multiInstallSuffix(values) || "default"}`;
}

/** Overhead table of a chart version: `openvmm-azure-runtime-rs` is 4.1.0's. */
function overheadOf(shim: string, version: ChartVersion): { memory: string; cpu: string } | undefined {
  if (shim === "openvmm-azure-runtime-rs" && !atLeast41(version)) return undefined;
  return RUNTIME_CLASS_OVERHEAD[shim];
}

export function runtimeClasses(
  values: ChartValues,
  useShimNodeSelectors: boolean,
  version: ChartVersion = CHART_VERSION,
  nfdRulesActive = false,
): RuntimeClass[] {
  if (!truthy(values.runtimeClasses?.enabled)) return [];
  const v41 = atLeast41(version);
  const marker = instanceMarkerLabel(values);
  const suffix = multiInstallSuffix(values);
  const instance = suffix || "default";
  const defaults = values.defaultShim ?? {};
  const defaultShim = [defaults.amd64, defaults.arm64, defaults.s390x, defaults.ppc64le].find(truthy);
  const globalOverhead =
    values.runtimeClasses && "overheadEnabled" in values.runtimeClasses
      ? values.runtimeClasses.overheadEnabled
      : true;
  const out: RuntimeClass[] = [];
  const variants: RuntimeClass[] = [];
  for (const { name: shim, config } of enabledShims(values)) {
    const base = overheadOf(shim, version);
    if (!base) continue;
    const rc = isMap(config.runtimeClass) ? config.runtimeClass : undefined;
    const overhead = mergeOverwrite(base, rc && truthy(rc.overhead) ? rc.overhead : undefined);
    const overheadOn = rc && "overheadEnabled" in rc ? rc.overheadEnabled : globalOverhead;
    const nodeSelector: Record<string, string> = { [KATA_RUNTIME_LABEL]: "true" };
    // 4.1.0: the install's own mark too; neither ownership key may be restated by the shim.
    if (v41) nodeSelector[marker] = "true";
    const ownership = v41 ? [KATA_RUNTIME_LABEL, marker] : [];
    if (rc && truthy(rc.nodeSelector) && isMap(rc.nodeSelector)) {
      // The chart appends the shim's keys in key order; a repeated key would be a duplicate YAML key,
      // which Kubernetes' decoder resolves to the last value, as this assignment does.
      for (const key of Object.keys(rc.nodeSelector).sort())
        if (!ownership.includes(key)) nodeSelector[key] = goPrint(rc.nodeSelector[key]);
    } else if (useShimNodeSelectors && isPureTeeShim(shim)) {
      if (shim.includes("snp")) nodeSelector["amd.feature.node.kubernetes.io/snp"] = "true";
      if (shim.includes("tdx")) nodeSelector["intel.feature.node.kubernetes.io/tdx"] = "true";
      if (shim.endsWith("-se") || shim.endsWith("-se-runtime-rs")) {
        nodeSelector["feature.node.kubernetes.io/cpu-security.se.enabled"] = "true";
      }
    }
    // 4.1.0 with the TEE-key NodeFeatureRule active: each confidential sandbox consumes one key.
    const teeKeys: Record<string, string> = {};
    if (v41 && nfdRulesActive && shim.includes("snp")) teeKeys["sev-snp.amd.com/esids"] = "1";
    if (v41 && nfdRulesActive && shim.includes("tdx")) teeKeys["tdx.intel.com/keys"] = "1";
    const podFixed = {
      ...(truthy(overheadOn) ? { memory: goPrint(overhead.memory), cpu: goPrint(overhead.cpu) } : {}),
      ...teeKeys,
    };
    const build = (name: string, handler = suffixed(`kata-${shim}`, suffix)): RuntimeClass =>
      compact({
        kind: "RuntimeClass",
        apiVersion: "node.k8s.io/v1",
        metadata: {
          name,
          labels: { "app.kubernetes.io/managed-by": "kata-deploy", "kata-deploy/instance": instance },
          annotations: { "katacontainers.io/kata-version": version },
        },
        handler,
        overhead: truthy(podFixed) ? { podFixed } : undefined,
        scheduling: { nodeSelector: { ...nodeSelector } },
      });
    out.push(build(suffixed(`kata-${shim}`, suffix)));
    if (truthy(values.runtimeClasses?.createDefault) && !suffix && shim === goPrint(defaultShim)) {
      out.push(build(goPrint(values.runtimeClasses?.defaultName)));
    }
    // 4.1.0: `kata-<shim>[-S]-debug` (debug) and `-devkit` (debug and devkit), name = handler.
    for (const variant of ["debug", "devkit"]) {
      const on = variant === "debug" ? truthy(values.debug) : truthy(values.debug) && truthy(values.devkit);
      if (!v41 || !on) continue;
      const name = `${suffixed(`kata-${shim}`, suffix)}-${variant}`;
      variants.push(build(name, name));
    }
  }
  return [...out, ...variants];
}

/** 4.1.0 `kata-deploy.nfdRulesActive`: `nodeFeatureRules.create` true, or auto with NFD in this release or found. */
export function nfdRulesActive(values: ChartValues, externalNfd: boolean): boolean {
  const nfr = isMap(values.nodeFeatureRules) ? values.nodeFeatureRules : {};
  const create =
    "create" in nfr && nfr.create !== null && nfr.create !== undefined ? goPrint(nfr.create) : "auto";
  if (create === "true") return true;
  if (create === "false") return false;
  if (create !== "auto") {
    throw new ChartValuesError(
      `nodeFeatureRules.create must be one of auto, true, false (got ${JSON.stringify(create)})`,
    );
  }
  return truthy(values["node-feature-discovery"]?.enabled) || externalNfd;
}

/** 4.1.0's NodeFeatureRule `kata-tee-keys[-S]`: advertises the SEV-SNP and TDX key counts the RuntimeClasses request. */
export function teeKeysNodeFeatureRule(values: ChartValues, release: Release): K8sObject {
  const suffix = multiInstallSuffix(values);
  const rule = (name: string, label: string, resource: string, source: string, feature: string) => ({
    name,
    labels: { [label]: "true" },
    extendedResources: { [resource]: source },
    matchFeatures: [{ feature: "cpu.security", matchExpressions: { [feature]: { op: "Exists" } } }],
  });
  return {
    apiVersion: "nfd.k8s-sigs.io/v1alpha1",
    kind: "NodeFeatureRule",
    metadata: {
      name: suffixed("kata-tee-keys", suffix),
      labels: {
        "app.kubernetes.io/managed-by": "kata-deploy",
        "app.kubernetes.io/instance": release.name,
        "kata-deploy/instance": suffix || "default",
      },
    },
    spec: {
      rules: [
        rule(
          "amd.sev-snp",
          "amd.feature.node.kubernetes.io/snp",
          "sev-snp.amd.com/esids",
          "@cpu.security.sev.encrypted_state_ids",
          "sev.snp.enabled",
        ),
        rule(
          "intel.tdx",
          "intel.feature.node.kubernetes.io/tdx",
          "tdx.intel.com/keys",
          "@cpu.security.tdx.total_keys",
          "tdx.enabled",
        ),
      ],
    },
  };
}

/** The `handler:` of a custom runtime's RuntimeClass text, found line by line as the chart does (last wins). */
export function customHandler(runtimeClassText: unknown): string {
  let handler = "";
  if (!truthy(runtimeClassText)) return handler;
  for (const line of goPrint(runtimeClassText).split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("handler:")) handler = trimmed.slice("handler:".length).trim();
  }
  return handler;
}

export function dig(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (!isMap(current) || !(key in current)) return "";
    current = current[key];
  }
  return current;
}

export function customRuntimeEntries(values: ChartValues): [string, Record<string, unknown>][] {
  const runtimes = values.customRuntimes?.runtimes;
  if (!isMap(runtimes)) return [];
  return Object.keys(runtimes)
    .sort()
    .map((name) => [name, isMap(runtimes[name]) ? (runtimes[name] as Record<string, unknown>) : {}]);
}

export function customConfigsConfigMap(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
): ConfigMap | undefined {
  if (!hasCustomConfigs(values)) return undefined;
  const data: Record<string, string> = {};
  if (hasCustomRuntimes(values)) {
    // Format: handler:baseConfig:containerd_snapshotter:crio_pulltype
    const lines = customRuntimeEntries(values).flatMap(([, runtime]) => {
      const handler = customHandler(runtime.runtimeClass);
      if (!handler) return [];
      const snapshotter = goPrint(dig(runtime, "containerd", "snapshotter"));
      const pullType = goPrint(dig(runtime, "crio", "pullType"));
      return [`${handler}:${goPrint(runtime.baseConfig)}:${snapshotter}:${pullType}`];
    });
    data["custom-runtimes.list"] = blockText(lines.join("\n"));
    for (const [, runtime] of customRuntimeEntries(values)) {
      const handler = customHandler(runtime.runtimeClass);
      if (handler && truthy(runtime.dropIn))
        data[`dropin-${handler}.toml`] = blockText(goPrint(runtime.dropIn));
    }
  }
  for (const { name, config } of enabledShims(values)) {
    if (truthy(config.dropIn) && goPrint(config.dropIn).trim() !== "") {
      data[`dropin-${name}.toml`] = blockText(goPrint(config.dropIn));
    }
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: customConfigsConfigMapName(values),
      namespace: release.namespace,
      labels: standardLabels(values, release, version),
    },
    data,
  };
}

export function customRuntimeClasses(
  values: ChartValues,
  options: RenderOptions,
  version: ChartVersion = CHART_VERSION,
): K8sObject[] {
  if (!hasCustomRuntimes(values)) return [];
  const out: K8sObject[] = [];
  for (const [name, runtime] of customRuntimeEntries(values)) {
    if (!truthy(runtime.runtimeClass)) continue;
    if (!options.parseYaml) {
      throw new ChartValuesError(
        `customRuntimes.runtimes.${name}.runtimeClass: rendering it needs a YAML parser; pass options.parseYaml (e.g. require("yaml").parse)`,
      );
    }
    let parsed: unknown;
    try {
      parsed = options.parseYaml(goPrint(runtime.runtimeClass));
    } catch (error) {
      throw new ChartValuesError(
        `customRuntimes.runtimes.${name}.runtimeClass: not valid YAML (${(error as Error).message}); give a whole RuntimeClass manifest`,
      );
    }
    const object: Record<string, unknown> = isMap(parsed) ? cloneJson(parsed) : {};
    const inherit = "inheritBaseOverhead" in runtime ? runtime.inheritBaseOverhead : true;
    const base = RUNTIME_CLASS_OVERHEAD[goPrint(runtime.baseConfig)];
    if (truthy(inherit) && base) {
      const given = dig(object, "overhead", "podFixed");
      object.overhead = { podFixed: mergeOverwrite(base, given) };
    }
    if (atLeast41(version)) {
      // 4.1.0 gates custom classes on this install's mark too.
      const scheduling = isMap(object.scheduling) ? object.scheduling : {};
      const selector = isMap(scheduling.nodeSelector) ? scheduling.nodeSelector : {};
      object.scheduling = {
        ...scheduling,
        nodeSelector: { ...selector, [instanceMarkerLabel(values)]: "true" },
      };
    }
    out.push(object as K8sObject);
  }
  return out;
}

export function userDropInConfigMap(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
): ConfigMap | undefined {
  if (!hasUserDropIn(values)) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: userDropInConfigMapName(values),
      namespace: release.namespace,
      labels: standardLabels(values, release, version),
    },
    data: { "containerd-user-dropin.toml": blockText(goPrint(values.containerd?.userDropIn)) },
  };
}

/** `monitor.runtimeEndpoint`, else the containerd socket of the distribution (or `containerd.runtimeSocket`). */
export function monitorRuntimeEndpoint(values: ChartValues): string {
  return truthy(values.monitor?.runtimeEndpoint)
    ? goPrint(values.monitor?.runtimeEndpoint)
    : containerdRuntimeSocket(values);
}

/** The directory holding the monitor's socket (Go's path.Dir of the endpoint without its unix: scheme). */
export function monitorSocketDir(values: ChartValues): string {
  const endpoint = monitorRuntimeEndpoint(values);
  const socket = endpoint.startsWith("unix://")
    ? endpoint.slice("unix://".length)
    : endpoint.startsWith("unix:")
      ? endpoint.slice("unix:".length)
      : endpoint;
  return goPathDir(socket);
}

/** Go's path.Dir: everything before the last '/', cleaned; "." when there is none. */
function goPathDir(p: string): string {
  const slash = p.lastIndexOf("/");
  const dir = slash < 0 ? "" : p.slice(0, slash + 1);
  const absolute = dir.startsWith("/");
  const parts: string[] = [];
  for (const part of dir.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
    else if (!(part === ".." && absolute)) parts.push(part);
  }
  const cleaned = (absolute ? "/" : "") + parts.join("/");
  return cleaned === "" ? "." : cleaned;
}

/** monitor.logLevel, then logLevel, then `debug` → debug, else info. */
export function monitorLogLevel(values: ChartValues): string {
  let level = goPrint(values.monitor?.logLevel).trim();
  if (!level) level = goPrint(values.logLevel).trim();
  if (!level && truthy(values.debug)) level = "debug";
  return level || "info";
}

export function monitorDaemonSet(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
): DaemonSet | undefined {
  const monitor = values.monitor;
  if (!truthy(monitor?.enabled)) return undefined;
  const socketDir = monitorSocketDir(values);
  const labels = { "app.kubernetes.io/name": "kata-monitor", "app.kubernetes.io/instance": release.name };
  return compact({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { labels: { ...labels }, name: "kata-monitor", namespace: release.namespace },
    spec: {
      selector: { matchLabels: { ...labels } },
      template: {
        metadata: { labels: { ...labels }, annotations: { "prometheus.io/scrape": "true" } },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          nodeSelector: withValue(values.nodeSelector),
          ...podPlacement(values),
          containers: [
            {
              name: "kata-monitor",
              image: imageRef(monitor?.image, version),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              securityContext: cloneJson(monitor?.securityContext ?? {}),
              args: [
                `-listen-address=${goPrint(monitor?.listenAddress)}`,
                `-log-level=${monitorLogLevel(values)}`,
                `-runtime-endpoint=${monitorRuntimeEndpoint(values)}`,
              ],
              ports: [{ containerPort: printedScalar(monitor?.port) as number }],
              resources: cloneJson(monitor?.resources ?? {}),
              volumeMounts: [
                { name: "containerd-sock", mountPath: socketDir, readOnly: true },
                { name: "sbs", mountPath: "/run/vc/sbs/", readOnly: true },
              ],
            },
          ],
          terminationGracePeriodSeconds: 30,
          volumes: [
            { name: "containerd-sock", hostPath: { path: socketDir, type: "Directory" } },
            { name: "sbs", hostPath: { path: "/run/vc/sbs/", type: "DirectoryOrCreate" } },
          ],
        },
      },
    },
  });
}
