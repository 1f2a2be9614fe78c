// What every pod that runs the kata-deploy binary shares in chart 4.0.0: the shim lists per architecture,
// the common environment (kata-deploy-chart.md §3.1, §3.3, OLD variables only), the host mounts and their
// volumes, and the image references. Node built-ins only.

import {
  ARCHES,
  atLeast41,
  CHART_VERSION,
  type Arch,
  type ChartValues,
  type ChartVersion,
  type ShimValues,
} from "./defaults";
import { goPrint, isMap, truthy } from "./goValues";
import type { EnvVar, Volume, VolumeMount } from "./k8s";
import { CHART_NAME } from "./names";

/** Architecture as the chart spells it in env names. */
export const ARCH_ENV_SUFFIX: Readonly<Record<Arch, string>> = {
  amd64: "X86_64",
  arm64: "AARCH64",
  s390x: "S390X",
  ppc64le: "PPC64LE",
};

export class ChartValuesError extends Error {
  override readonly name = "ChartValuesError";
}

export interface ShimEntry {
  name: string;
  config: ShimValues;
}

/**
 * Every shim key under `shims` except `disableAll`, in Go template map order (sorted by byte value), with
 * its config. A shim whose entry is not a map is read as an empty one, as Go templates read nil fields.
 */
export function shimEntries(values: ChartValues): ShimEntry[] {
  const shims = values.shims ?? {};
  return Object.keys(shims)
    .filter((name) => name !== "disableAll")
    .sort()
    .map((name) => {
      const config = shims[name];
      return { name, config: isMap(config) ? config : {} };
    });
}

/**
 * `enabled: true` → on, `false` → off, absent/null → on unless `shims.disableAll`. Any other value makes the
 * chart's `eq` fail at render time (incompatible types), so it is refused here with the field's path.
 */
export function isShimEnabled(values: ChartValues, entry: ShimEntry): boolean {
  const enabled = entry.config.enabled;
  if (enabled === true) return true;
  if (enabled === false) return false;
  if (enabled === undefined || enabled === null) return !truthy(values.shims?.disableAll);
  throw new ChartValuesError(
    `shims.${entry.name}.enabled: ${JSON.stringify(enabled)} is not valid; use true, false or null (follow shims.disableAll)`,
  );
}

export function enabledShims(values: ChartValues): ShimEntry[] {
  return shimEntries(values).filter((entry) => isShimEnabled(values, entry));
}

function supports(entry: ShimEntry, arch: Arch): boolean {
  const arches = entry.config.supportedArches;
  return Array.isArray(arches) && arches.some((a) => a === arch);
}

/** Enabled shims that list `arch` in supportedArches, alphabetically (what `SHIMS_<ARCH>` lists). */
export function shimsForArch(values: ChartValues, arch: Arch): ShimEntry[] {
  return enabledShims(values).filter((entry) => supports(entry, arch));
}

/** `DEFAULT_SHIM_<ARCH>`: the configured default, only when that shim is enabled and supports the arch. */
export function defaultShimForArch(values: ChartValues, arch: Arch): string {
  const configured = values.defaultShim?.[arch];
  if (!truthy(configured)) return "";
  const name = goPrint(configured);
  return shimsForArch(values, arch).some((entry) => entry.name === name) ? name : "";
}

function allowedAnnotations(values: ChartValues, arch: Arch): string {
  return shimsForArch(values, arch)
    .flatMap(({ name, config }) => {
      const list = Array.isArray(config.allowedHypervisorAnnotations)
        ? config.allowedHypervisorAnnotations
        : [];
      return list.length > 0 ? [`${name}:${list.map(goPrint).join(",")}`] : [];
    })
    .join(" ");
}

function snapshotterMapping(values: ChartValues, arch: Arch): string {
  return shimsForArch(values, arch)
    .flatMap(({ name, config }) =>
      truthy(config.containerd) && truthy(config.containerd?.snapshotter)
        ? [`${name}:${goPrint(config.containerd?.snapshotter)}`]
        : [],
    )
    .join(",");
}

/** A shim is marked guest-pull when containerd.forceGuestPull or crio.guestPull is truthy. */
export function pullTypeMapping(values: ChartValues, arch: Arch): string {
  return shimsForArch(values, arch)
    .flatMap(({ name, config }) => {
      const forced = truthy(config.containerd) && truthy(config.containerd?.forceGuestPull);
      const crio = truthy(config.crio) && truthy(config.crio?.guestPull);
      return forced || crio ? [`${name}:guest-pull`] : [];
    })
    .join(",");
}

/** EXPERIMENTAL_FORCE_GUEST_PULL looks at containerd.forceGuestPull only. */
export function forceGuestPull(values: ChartValues, arch: Arch): string {
  return shimsForArch(values, arch)
    .flatMap(({ name, config }) =>
      truthy(config.containerd) && truthy(config.containerd?.forceGuestPull) ? [name] : [],
    )
    .join(",");
}

/** Agent proxies are not filtered by arch: every enabled shim with a value, `shim=value` joined with ';'. */
function agentProxy(values: ChartValues, field: "httpsProxy" | "noProxy"): string {
  return enabledShims(values)
    .flatMap(({ name, config }) =>
      truthy(config.agent) && truthy(config.agent?.[field])
        ? [`${name}=${goPrint(config.agent?.[field])}`]
        : [],
    )
    .join(";");
}

function trimmed(value: unknown): string {
  return goPrint(value).trim();
}

export function multiInstallSuffix(values: ChartValues): string {
  return truthy(values.env?.multiInstallSuffix) ? goPrint(values.env?.multiInstallSuffix) : "";
}

function suffixed(stem: string, suffix: string): string {
  return suffix ? `${stem}-${suffix}` : stem;
}

export function hasCustomRuntimes(values: ChartValues): boolean {
  return truthy(values.customRuntimes?.enabled) && truthy(values.customRuntimes?.runtimes);
}

/** Some enabled shim carries a non-blank `dropIn`. */
export function hasDefaultRuntimeDropIns(values: ChartValues): boolean {
  return enabledShims(values).some(
    ({ config }) => truthy(config.dropIn) && goPrint(config.dropIn).trim() !== "",
  );
}

/** The custom-configs ConfigMap (and its mount) exists. */
export function hasCustomConfigs(values: ChartValues): boolean {
  return hasCustomRuntimes(values) || hasDefaultRuntimeDropIns(values);
}

export function hasUserDropIn(values: ChartValues): boolean {
  return trimmed(values.containerd?.userDropIn) !== "";
}

export function customConfigsConfigMapName(values: ChartValues): string {
  return suffixed(`${CHART_NAME}-custom-configs`, multiInstallSuffix(values));
}

export function userDropInConfigMapName(values: ChartValues): string {
  return suffixed(`${CHART_NAME}-containerd-user-dropin`, multiInstallSuffix(values));
}

/** Where the custom containerd drop-in is mounted, and the env value that points at it. */
export const USER_DROP_IN_FILE = "/custom-containerd-config/containerd-user-dropin.toml";

function perArch(prefix: string, compute: (arch: Arch) => string): EnvVar[] {
  return ARCHES.flatMap((arch) => {
    const value = compute(arch);
    return value ? [{ name: `${prefix}_${ARCH_ENV_SUFFIX[arch]}`, value }] : [];
  });
}

function optional(name: string, value: string): EnvVar[] {
  return value ? [{ name, value }] : [];
}

/**
 * `kata-deploy.commonEnv` of chart 4.0.0 in its exact order. Conditional variables are left out when
 * empty; INSTALLATION_PREFIX and MULTI_INSTALL_SUFFIX are always there.
 */
export function commonEnv(values: ChartValues, version: ChartVersion = CHART_VERSION): EnvVar[] {
  const v41 = atLeast41(version);
  const suffix = multiInstallSuffix(values);
  return [
    { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: "DAEMONSET_NAME", value: suffixed(CHART_NAME, suffix) },
    { name: "DEBUG", value: truthy(values.debug) ? "true" : "false" },
    ...perArch("SHIMS", (arch) =>
      shimsForArch(values, arch)
        .map((entry) => entry.name)
        .join(" "),
    ),
    ...perArch("DEFAULT_SHIM", (arch) => defaultShimForArch(values, arch)),
    ...perArch("ALLOWED_HYPERVISOR_ANNOTATIONS", (arch) => allowedAnnotations(values, arch)),
    ...perArch("SNAPSHOTTER_HANDLER_MAPPING", (arch) => snapshotterMapping(values, arch)),
    ...optional("AGENT_HTTPS_PROXY", agentProxy(values, "httpsProxy")),
    ...optional("AGENT_NO_PROXY", agentProxy(values, "noProxy")),
    ...perArch("PULL_TYPE_MAPPING", (arch) => pullTypeMapping(values, arch)),
    { name: "INSTALLATION_PREFIX", value: goPrint(values.env?.installationPrefix) },
    { name: "MULTI_INSTALL_SUFFIX", value: goPrint(values.env?.multiInstallSuffix) },
    ...optional(
      "EXPERIMENTAL_SETUP_SNAPSHOTTER",
      Array.isArray(values.snapshotter?.setup) ? values.snapshotter.setup.map(goPrint).join(",") : "",
    ),
    ...optional("EROFS_MERGE_MODE", trimmed(values.snapshotter?.erofsMergeMode)),
    ...optional("EROFS_SNAPSHOTTER_MODE", trimmed(values.snapshotter?.erofsSnapshotterMode)),
    ...optional("EROFS_DMVERITY", truthy(values.snapshotter?.erofsDmverity) ? "dmverity" : ""),
    ...perArch("EXPERIMENTAL_FORCE_GUEST_PULL", (arch) => forceGuestPull(values, arch)),
    ...optional("CONTAINERD_CONFIG_FILE_NAME", trimmed(values.containerd?.configFileName)),
    // 4.1.0: the install checks the distribution against the node, unless configDir overrides the derivation.
    ...optional(
      "K8S_DISTRIBUTION",
      v41 && !trimmed(values.containerd?.configDir) ? goPrint(values.k8sDistribution) : "",
    ),
    ...optional("CONTAINERD_USER_DROP_IN_SOURCE_FILE", hasUserDropIn(values) ? USER_DROP_IN_FILE : ""),
    ...optional("HOST_OS", truthy(values.env?.hostOS) ? goPrint(values.env?.hostOS) : ""),
    ...optional("CUSTOM_RUNTIMES_ENABLED", hasCustomRuntimes(values) ? "true" : ""),
    ...optional("DEVKIT", v41 && truthy(values.debug) && truthy(values.devkit) ? "true" : ""),
    ...optional(
      "STARTUP_TAINTS",
      truthy(values.startupTaints) && Array.isArray(values.startupTaints)
        ? values.startupTaints.map(goPrint).join(",")
        : "",
    ),
  ];
}

/** The containerd config directory on the host for `k8sDistribution` (§3.2), unless `containerd.configDir`. */
export function containerdConfPath(values: ChartValues): string {
  if (truthy(values.containerd) && truthy(values.containerd?.configDir))
    return goPrint(values.containerd?.configDir);
  switch (values.k8sDistribution) {
    case "rke2":
      return "/var/lib/rancher/rke2/agent/etc/containerd/";
    case "k3s":
      return "/var/lib/rancher/k3s/agent/etc/containerd/";
    case "k0s":
      return "/etc/k0s/";
    case "microk8s":
      return "/var/snap/microk8s/current/args/";
    default:
      return "/etc/containerd/";
  }
}

/** The CRI socket URI for `k8sDistribution` (§3.2), unless `containerd.runtimeSocket`. */
export function containerdRuntimeSocket(values: ChartValues): string {
  if (truthy(values.containerd) && truthy(values.containerd?.runtimeSocket))
    return goPrint(values.containerd?.runtimeSocket);
  switch (values.k8sDistribution) {
    case "k3s":
    case "rke2":
      return "unix:///run/k3s/containerd/containerd.sock";
    case "k0s":
      return "unix:///run/k0s/containerd.sock";
    case "microk8s":
      return "unix:///var/snap/microk8s/common/run/containerd.sock";
    default:
      return "unix:///run/containerd/containerd.sock";
  }
}

/** 4.1.0's host install directory: `<installationPrefix>/opt/kata[-S]`. */
export function installDir(values: ChartValues): string {
  const prefix = truthy(values.env?.installationPrefix) ? goPrint(values.env?.installationPrefix) : "";
  return suffixed(`${prefix}/opt/kata`, multiInstallSuffix(values));
}

/** 4.1.0's precise host mounts (no whole-host mount): name, container path, host path, type, read-only. */
function hostMounts41(values: ChartValues): [string, string, string, string | undefined, boolean][] {
  return [
    ["crio-conf", "/etc/crio/", "/etc/crio/", undefined, false],
    ["containerd-conf", "/etc/containerd/", containerdConfPath(values), undefined, false],
    ["kata-install", installDir(values), installDir(values), "DirectoryOrCreate", false],
    ["systemd-system", "/etc/systemd/system", "/etc/systemd/system", "DirectoryOrCreate", false],
    ["systemd-private", "/run/systemd/private", "/run/systemd/private", "Socket", false],
    ["boot", "/boot", "/boot", undefined, true],
    ["host-machine-id", "/host-machine-id", "/etc/machine-id", "File", true],
    ["host-run-lock", "/host-run-lock", "/run/lock", "DirectoryOrCreate", false],
    ["host-usr-bin", "/host-usr/bin", "/usr/bin", undefined, true],
    ["host-usr-sbin", "/host-usr/sbin", "/usr/sbin", undefined, true],
    ["host-usr-local-bin", "/host-usr-local/bin", "/usr/local/bin", undefined, true],
    ["host-usr-local-sbin", "/host-usr-local/sbin", "/usr/local/sbin", undefined, true],
    ["host-bin", "/host-bin", "/bin", undefined, true],
    ["host-sbin", "/host-sbin", "/sbin", undefined, true],
  ];
}

/** `kata-deploy.commonVolumeMounts`: 4.0.0 mounts the whole host at /host/; 4.1.0 mounts precise paths. */
export function commonVolumeMounts(
  values: ChartValues,
  version: ChartVersion = CHART_VERSION,
): VolumeMount[] {
  const host: VolumeMount[] = atLeast41(version)
    ? [
        { name: "tmp", mountPath: "/tmp" },
        ...hostMounts41(values).map(([name, mountPath, , , readOnly]) =>
          readOnly ? { name, mountPath, readOnly } : { name, mountPath },
        ),
      ]
    : [
        { name: "crio-conf", mountPath: "/etc/crio/" },
        { name: "containerd-conf", mountPath: "/etc/containerd/" },
        { name: "host", mountPath: "/host/" },
      ];
  return [
    ...host,
    ...(hasUserDropIn(values)
      ? [{ name: "custom-containerd-config", mountPath: "/custom-containerd-config/", readOnly: true }]
      : []),
    ...(hasCustomConfigs(values)
      ? [{ name: "custom-configs", mountPath: "/custom-configs/", readOnly: true }]
      : []),
  ];
}

/** `kata-deploy.commonVolumes`: the volumes behind commonVolumeMounts (4.0.0 hostPaths carry no type). */
export function commonVolumes(values: ChartValues, version: ChartVersion = CHART_VERSION): Volume[] {
  const host: Volume[] = atLeast41(version)
    ? [
        { name: "tmp", emptyDir: {} },
        ...hostMounts41(values).map(([name, , path, type]) => ({
          name,
          hostPath: type ? { path, type } : { path },
        })),
      ]
    : [
        { name: "crio-conf", hostPath: { path: "/etc/crio/" } },
        { name: "containerd-conf", hostPath: { path: containerdConfPath(values) } },
        { name: "host", hostPath: { path: "/" } },
      ];
  return [
    ...host,
    ...(hasUserDropIn(values)
      ? [{ name: "custom-containerd-config", configMap: { name: userDropInConfigMapName(values) } }]
      : []),
    ...(hasCustomConfigs(values)
      ? [{ name: "custom-configs", configMap: { name: customConfigsConfigMapName(values) } }]
      : []),
  ];
}

/** `reference:tag` with the tag defaulting to appVersion; a reference holding '@' (a digest) is used verbatim. */
export function imageRef(
  image: { reference?: unknown; tag?: unknown } | undefined,
  fallbackTag: string = CHART_VERSION,
): string {
  const reference = goPrint(image?.reference);
  if (reference.includes("@")) return reference;
  const tag = truthy(image?.tag) ? goPrint(image?.tag) : fallbackTag;
  return `${reference}:${tag}`;
}

/** The kata-deploy image of the DaemonSet and of every per-node stage container. */
export function kataDeployImage(values: ChartValues, version: ChartVersion = CHART_VERSION): string {
  return imageRef(values.image, version);
}

/** The dispatcher image of the hook Jobs (`job.dispatcherImage`, tag "" → appVersion). */
export function dispatcherImage(values: ChartValues, version: ChartVersion = CHART_VERSION): string {
  return imageRef(values.job?.dispatcherImage, version);
}

/** The kubectl image: verbatim when it has a digest or the tag is empty (no appVersion fallback). */
export function kubectlImage(values: ChartValues): string {
  const reference = goPrint(values.kubectlImage?.reference);
  const tag = goPrint(values.kubectlImage?.tag);
  return reference.includes("@") || tag === "" ? reference : `${reference}:${tag}`;
}
