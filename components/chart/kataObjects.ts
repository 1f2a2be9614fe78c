// Objects of both modes: the kata-deploy identity (§6), RuntimeClasses (§2.5), the optional custom-configs and
// containerd drop-in ConfigMaps, custom RuntimeClasses, and the kata-monitor DaemonSet (§2.1). Node built-ins only.

import { APP_VERSION, type ChartValues } from "./defaults";
import { cloneJson, goPrint, isMap, truthy } from "./goValues";
import type { BindingLike, ConfigMap, DaemonSet, K8sObject, RoleLike, RuntimeClass } from "./k8s";
import { chartNames } from "./names";
import {
  ChartValuesError,
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

export function kataRbac(values: ChartValues, release: Release): K8sObject[] {
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

/** Built-in RuntimeClass overhead per shim (§2.5, OLD table). A shim missing here gets no RuntimeClass. */
export const RUNTIME_CLASS_OVERHEAD: Readonly<Record<string, { memory: string; cpu: string }>> = {
  clh: { memory: "130Mi", cpu: "250m" },
  "clh-azure": { memory: "130Mi", cpu: "250m" },
  "clh-runtime-rs": { memory: "130Mi", cpu: "250m" },
  "clh-azure-runtime-rs": { memory: "130Mi", cpu: "250m" },
  dragonball: { memory: "130Mi", cpu: "250m" },
  fc: { memory: "130Mi", cpu: "250m" },
  qemu: { memory: "160Mi", cpu: "250m" },
  "qemu-coco-dev": { memory: "160Mi", cpu: "250m" },
  "qemu-coco-dev-runtime-rs": { memory: "160Mi", cpu: "250m" },
  "qemu-runtime-rs": { memory: "160Mi", cpu: "250m" },
  "qemu-se-runtime-rs": { memory: "1024Mi", cpu: "1.0" },
  "qemu-se": { memory: "1024Mi", cpu: "1.0" },
  "qemu-snp": { memory: "2048Mi", cpu: "1.0" },
  "qemu-snp-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx": { memory: "2048Mi", cpu: "1.0" },
  "qemu-tdx-runtime-rs": { memory: "2048Mi", cpu: "1.0" },
  "qemu-nvidia-gpu": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-snp-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx": { memory: "10240Mi", cpu: "1.0" },
  "qemu-nvidia-gpu-tdx-runtime-rs": { memory: "10240Mi", cpu: "1.0" },
  "qemu-cca": { memory: "2048Mi", cpu: "1.0" },
  stratovirt: { memory: "130Mi", cpu: "250m" },
  remote: { memory: "120Mi", cpu: "250m" },
};

export function isPureTeeShim(shim: string): boolean {
  const tee =
    shim.includes("snp") || shim.includes("tdx") || shim.endsWith("-se") || shim.endsWith("-se-runtime-rs");
  return tee && !shim.includes("nvidia-gpu");
}

export function runtimeClasses(values: ChartValues, useShimNodeSelectors: boolean): RuntimeClass[] {
  if (!truthy(values.runtimeClasses?.enabled)) return [];
  const suffix = multiInstallSuffix(values);
  const instance = suffix || "default";
  const defaults = values.defaultShim ?? {};
  const defaultShim = [defaults.amd64, defaults.arm64, defaults.s390x, defaults.ppc64le].find(truthy);
  const globalOverhead =
    values.runtimeClasses && "overheadEnabled" in values.runtimeClasses
      ? values.runtimeClasses.overheadEnabled
      : true;
  const out: RuntimeClass[] = [];
  for (const { name: shim, config } of enabledShims(values)) {
    const base = RUNTIME_CLASS_OVERHEAD[shim];
    if (!base) continue;
    const rc = isMap(config.runtimeClass) ? config.runtimeClass : undefined;
    const overhead = mergeOverwrite(base, rc && truthy(rc.overhead) ? rc.overhead : undefined);
    const overheadOn = rc && "overheadEnabled" in rc ? rc.overheadEnabled : globalOverhead;
    const nodeSelector: Record<string, string> = { "katacontainers.io/kata-runtime": "true" };
    if (rc && truthy(rc.nodeSelector) && isMap(rc.nodeSelector)) {
      // The chart appends the shim's keys in key order; a repeated key would be a duplicate YAML key,
      // which Kubernetes' decoder resolves to the last value, as this assignment does.
      for (const key of Object.keys(rc.nodeSelector).sort())
        nodeSelector[key] = goPrint(rc.nodeSelector[key]);
    } else if (useShimNodeSelectors && isPureTeeShim(shim)) {
      if (shim.includes("snp")) nodeSelector["amd.feature.node.kubernetes.io/snp"] = "true";
      if (shim.includes("tdx")) nodeSelector["intel.feature.node.kubernetes.io/tdx"] = "true";
      if (shim.endsWith("-se") || shim.endsWith("-se-runtime-rs")) {
        nodeSelector["feature.node.kubernetes.io/cpu-security.se.enabled"] = "true";
      }
    }
    const build = (name: string): RuntimeClass =>
      compact({
        kind: "RuntimeClass",
        apiVersion: "node.k8s.io/v1",
        metadata: {
          name,
          labels: { "app.kubernetes.io/managed-by": "kata-deploy", "kata-deploy/instance": instance },
          annotations: { "katacontainers.io/kata-version": APP_VERSION },
        },
        handler: suffixed(`kata-${shim}`, suffix),
        overhead: truthy(overheadOn)
          ? { podFixed: { memory: goPrint(overhead.memory), cpu: goPrint(overhead.cpu) } }
          : undefined,
        scheduling: { nodeSelector: { ...nodeSelector } },
      });
    out.push(build(suffixed(`kata-${shim}`, suffix)));
    if (truthy(values.runtimeClasses?.createDefault) && !suffix && shim === goPrint(defaultShim)) {
      out.push(build(goPrint(values.runtimeClasses?.defaultName)));
    }
  }
  return out;
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

export function customConfigsConfigMap(values: ChartValues, release: Release): ConfigMap | undefined {
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
      labels: standardLabels(values, release),
    },
    data,
  };
}

export function customRuntimeClasses(values: ChartValues, options: RenderOptions): K8sObject[] {
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
    out.push(object as K8sObject);
  }
  return out;
}

export function userDropInConfigMap(values: ChartValues, release: Release): ConfigMap | undefined {
  if (!hasUserDropIn(values)) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: userDropInConfigMapName(values),
      namespace: release.namespace,
      labels: standardLabels(values, release),
    },
    data: { "containerd-user-dropin.toml": blockText(goPrint(values.containerd?.userDropIn)) },
  };
}

export function monitorDaemonSet(values: ChartValues, release: Release): DaemonSet | undefined {
  const monitor = values.monitor;
  if (!truthy(monitor?.enabled)) return undefined;
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
              image: imageRef(monitor?.image),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              securityContext: cloneJson(monitor?.securityContext ?? {}),
              args: [
                `-listen-address=${goPrint(monitor?.listenAddress)}`,
                `-log-level=${goPrint(monitor?.logLevel)}`,
                `-runtime-endpoint=${goPrint(monitor?.runtimeEndpoint)}`,
              ],
              ports: [{ containerPort: printedScalar(monitor?.port) as number }],
              resources: cloneJson(monitor?.resources ?? {}),
              volumeMounts: [
                { name: "containerd-sock", mountPath: "/run/containerd", readOnly: true },
                { name: "sbs", mountPath: "/run/vc/sbs/", readOnly: true },
              ],
            },
          ],
          terminationGracePeriodSeconds: 30,
          volumes: [
            { name: "containerd-sock", hostPath: { path: "/run/containerd", type: "Directory" } },
            { name: "sbs", hostPath: { path: "/run/vc/sbs/", type: "DirectoryOrCreate" } },
          ],
        },
      },
    },
  });
}
