// Chart 4.0.0's values.yaml as data (kata-deploy-chart.md §1, the OLD column: 4.0.0 = the seed chart plus the
// pre-delete cleanup dispatcher, design.md §1), and Helm's coalescing of user values over it.
// Node built-ins only: the rollout's serialized dynamic provider imports this file.

import { cloneJson, isMap } from "./goValues";
import { PARALLELISM_DEFAULT } from "./parallelism";
import { KATA_RUNTIME_LABEL } from "./names";

/** The chart versions the offline renderers reproduce (each proven against Helm's render, tests/chart/fixtures). */
export const CHART_VERSIONS = ["4.0.0", "4.1.0"] as const;
export type ChartVersion = (typeof CHART_VERSIONS)[number];
/** The default chart version. Its `appVersion` equals it, and is the default tag of every image. */
export const CHART_VERSION: ChartVersion = "4.0.0";
export const APP_VERSION = CHART_VERSION;

export function isChartVersion(version: unknown): version is ChartVersion {
  return (CHART_VERSIONS as readonly unknown[]).includes(version);
}

/** Chart 4.1.0 and later (job-mode selection from the top-level keys, token-free per-node Jobs). */
export function atLeast41(version: ChartVersion): boolean {
  return version !== "4.0.0";
}

/**
 * Whether a chart version refuses, on an upgrade, a release whose `deploymentMode` or `env.multiInstallSuffix` differs
 * from what it was installed with (4.1.0 and later: kata-deploy-chart.md, the state ConfigMap's guard). Any version
 * string: a local chart's comes from its Chart.yaml; unknown or unparsable is taken as 4.0 (no guard).
 */
export function identityImmutable(version: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? "");
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 4 || (major === 4 && minor >= 1);
}

export type Arch = "amd64" | "arm64" | "s390x" | "ppc64le";
export const ARCHES: readonly Arch[] = ["amd64", "arm64", "s390x", "ppc64le"];

export interface ImageValues {
  reference: string;
  tag: string;
}

export interface NodeSelectorRequirementValues {
  key: string;
  operator: string;
  values?: string[];
}

export interface ShimValues {
  /** true = on, false = off, null/absent = on unless `shims.disableAll`. */
  enabled?: boolean | null;
  supportedArches?: string[];
  allowedHypervisorAnnotations?: string[];
  containerd?: { snapshotter?: string; forceGuestPull?: boolean; [key: string]: unknown };
  crio?: { guestPull?: boolean; [key: string]: unknown };
  agent?: { httpsProxy?: string; noProxy?: string; [key: string]: unknown };
  /** Implicit in values.yaml: a TOML drop-in shipped in the custom-configs ConfigMap. */
  dropIn?: string;
  runtimeClass?: {
    nodeSelector?: Record<string, string>;
    overheadEnabled?: boolean;
    overhead?: { memory?: string; cpu?: string; [key: string]: unknown };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** `shims.disableAll` plus one entry per shim name. */
export interface ShimsValues {
  disableAll?: boolean;
  [shim: string]: ShimValues | boolean | null | undefined;
}

export interface CustomRuntimeValues {
  baseConfig?: string;
  dropIn?: string;
  /** A whole RuntimeClass as YAML text, as the chart takes it. */
  runtimeClass?: string;
  inheritBaseOverhead?: boolean;
  containerd?: { snapshotter?: string };
  crio?: { pullType?: string };
  [key: string]: unknown;
}

export interface ProbeValues {
  enabled?: boolean;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
  timeoutSeconds?: number;
}

/**
 * The merged values tree of chart 4.0.0. Every field is optional because a user `null` deletes the key
 * (Helm's coalescing); unknown keys pass through (the chart ignores them, as Helm does).
 */
export interface ChartValues {
  deploymentMode?: "daemonset" | "job" | string | null;
  job?: {
    dispatcherImage?: ImageValues;
    parallelism?: number;
    nodes?: string[];
    nodeSelector?: Record<string, string>;
    nodeSelectorExpressions?: NodeSelectorRequirementValues[];
    cleanup?: {
      nodes?: string[];
      nodeSelector?: Record<string, string>;
      nodeSelectorExpressions?: NodeSelectorRequirementValues[];
      /** 4.1.0: the standard nodeAffinity shape (required terms only). */
      nodeAffinity?: Record<string, unknown> | null;
      [key: string]: unknown;
    };
    ttlSecondsAfterFinished?: number;
    backoffLimit?: number;
    /** 4.1.0: where the dispatcher pods run, and for how long the dispatcher waits (seconds). */
    dispatcherNodeSelector?: Record<string, string>;
    dispatcherTolerations?: Record<string, unknown>[];
    waitForNodesSeconds?: number;
    nodeSettleSeconds?: number;
    waitNodeReadySeconds?: number;
    activeDeadlineSeconds?: number;
    [key: string]: unknown;
  };
  /** 4.1.0: `kata-<shim>-devkit` RuntimeClasses and env DEVKIT (with `debug`). */
  devkit?: boolean;
  /** 4.1.0: `auto` | `true` | `false` (the TEE-key NodeFeatureRule and key requests). */
  nodeFeatureRules?: { create?: boolean | string | null; [key: string]: unknown };
  imagePullPolicy?: string;
  imagePullSecrets?: { name: string }[];
  image?: ImageValues;
  kubectlImage?: ImageValues;
  monitor?: {
    enabled?: boolean;
    image?: ImageValues;
    listenAddress?: string;
    runtimeEndpoint?: string;
    logLevel?: string;
    port?: number;
    securityContext?: Record<string, unknown>;
    resources?: Record<string, unknown>;
    [key: string]: unknown;
  };
  k8sDistribution?: string;
  containerd?: {
    configDir?: string;
    runtimeSocket?: string;
    configFileName?: string;
    userDropIn?: string;
    [key: string]: unknown;
  };
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  /** `key` or `key:effect`; env STARTUP_TAINTS (both modes). */
  startupTaints?: string[];
  /** DaemonSet pod labels (key `name` dropped) and annotations. */
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  /** DaemonSet affinity (merged with the node-feature-discovery terms when enabled). */
  affinity?: Record<string, unknown>;
  priorityClassName?: string;
  updateStrategy?: Record<string, unknown>;
  resources?: Record<string, unknown>;
  debug?: boolean;
  logLevel?: string;
  health?: {
    port?: number;
    startupProbe?: ProbeValues;
    livenessProbe?: ProbeValues;
    readinessProbe?: ProbeValues;
    [key: string]: unknown;
  };
  snapshotter?: {
    setup?: string[];
    erofsMergeMode?: string;
    erofsSnapshotterMode?: string;
    erofsDmverity?: boolean;
    [key: string]: unknown;
  };
  shims?: ShimsValues;
  defaultShim?: Partial<Record<Arch, string>> & Record<string, string | undefined>;
  runtimeClasses?: {
    enabled?: boolean;
    createDefault?: boolean;
    defaultName?: string;
    overheadEnabled?: boolean;
    [key: string]: unknown;
  };
  env?: { installationPrefix?: string; hostOS?: string; multiInstallSuffix?: string; [key: string]: unknown };
  "node-feature-discovery"?: { enabled?: boolean; [key: string]: unknown };
  verification?: {
    namespace?: string;
    timeout?: number;
    daemonsetTimeout?: number;
    pod?: string;
    [key: string]: unknown;
  };
  customRuntimes?: {
    enabled?: boolean;
    runtimes?: Record<string, CustomRuntimeValues>;
    [key: string]: unknown;
  };
  nameOverride?: string;
  fullnameOverride?: string;
  [key: string]: unknown;
}

/** What a user may give: any subset of the tree, `null` to delete a default key. Lists replace whole. */
export type ValuesOverride<T> = T extends readonly (infer E)[]
  ? readonly E[]
  : T extends object
    ? { [K in keyof T]?: ValuesOverride<T[K]> | null }
    : T;
export type ChartValuesInput = ValuesOverride<ChartValues>;

const AMD64 = ["amd64"];
const CONFIDENTIAL = {
  containerd: { snapshotter: "nydus", forceGuestPull: false },
  crio: { guestPull: true },
  agent: { httpsProxy: "", noProxy: "" },
};

function shim(arches: string[], extra: Omit<ShimValues, "supportedArches" | "enabled"> = {}): ShimValues {
  return {
    enabled: null,
    supportedArches: arches,
    allowedHypervisorAnnotations: [],
    containerd: { snapshotter: "" },
    ...cloneJson(extra),
  };
}

function confidential(arches: string[], nodeSelector?: Record<string, string>): ShimValues {
  return shim(arches, { ...CONFIDENTIAL, ...(nodeSelector ? { runtimeClass: { nodeSelector } } : {}) });
}

const GPU_NOT_CC = { runtimeClass: { nodeSelector: { "nvidia.com/cc.ready.state": "false" } } };
const GPU_SNP = { "nvidia.com/cc.ready.state": "true", "amd.feature.node.kubernetes.io/snp": "true" };
const GPU_TDX = { "nvidia.com/cc.ready.state": "true", "intel.feature.node.kubernetes.io/tdx": "true" };

/** The default shim set of the seed's values.yaml (kata-deploy-chart.md §1.10, OLD arches), in file order. */
function defaultShims(): ShimsValues {
  return {
    disableAll: false,
    clh: shim(AMD64),
    "clh-azure": shim(AMD64),
    "clh-runtime-rs": shim(AMD64),
    "clh-azure-runtime-rs": shim(AMD64),
    dragonball: shim(AMD64),
    fc: shim(AMD64, { containerd: { snapshotter: "devmapper" } }),
    qemu: shim(["amd64", "arm64", "s390x", "ppc64le"]),
    "qemu-runtime-rs": shim(["amd64", "arm64", "s390x"]),
    "qemu-nvidia-cpu": shim(["amd64", "arm64"]),
    "qemu-nvidia-cpu-runtime-rs": shim(["amd64", "arm64"]),
    "qemu-nvidia-gpu": shim(AMD64, GPU_NOT_CC),
    "qemu-nvidia-gpu-runtime-rs": shim(["amd64", "arm64"], GPU_NOT_CC),
    "qemu-nvidia-gpu-snp": confidential(AMD64, GPU_SNP),
    "qemu-nvidia-gpu-snp-runtime-rs": confidential(AMD64, GPU_SNP),
    "qemu-nvidia-gpu-tdx": confidential(AMD64, GPU_TDX),
    "qemu-nvidia-gpu-tdx-runtime-rs": confidential(AMD64, GPU_TDX),
    "qemu-snp": confidential(AMD64),
    "qemu-snp-runtime-rs": confidential(AMD64),
    "qemu-tdx": confidential(AMD64),
    "qemu-tdx-runtime-rs": confidential(AMD64),
    "qemu-se": confidential(["s390x"]),
    "qemu-se-runtime-rs": confidential(["s390x"]),
    "qemu-coco-dev": confidential(["amd64", "s390x"]),
    "qemu-coco-dev-runtime-rs": confidential(["amd64", "arm64", "s390x"]),
    // `remote` is the one shim off by default; it has no containerd.forceGuestPull key.
    remote: {
      enabled: false,
      supportedArches: ["amd64", "ppc64le", "s390x"],
      allowedHypervisorAnnotations: [],
      containerd: { snapshotter: "nydus" },
      crio: { guestPull: true },
      agent: { httpsProxy: "", noProxy: "" },
    },
  };
}

function buildDefaults(): ChartValues {
  return {
    deploymentMode: "daemonset",
    job: {
      // tag "" falls back to appVersion (4.0.0) through the chart's `default .Chart.AppVersion`.
      dispatcherImage: { reference: "quay.io/kata-containers/kata-deploy-job-dispatcher", tag: "" },
      parallelism: PARALLELISM_DEFAULT,
      nodes: [],
      nodeSelector: {},
      nodeSelectorExpressions: [
        { key: "node-role.kubernetes.io/control-plane", operator: "DoesNotExist" },
        { key: "node-role.kubernetes.io/master", operator: "DoesNotExist" },
      ],
      cleanup: {
        nodes: [],
        nodeSelector: {},
        nodeSelectorExpressions: [{ key: KATA_RUNTIME_LABEL, operator: "Exists" }],
      },
      ttlSecondsAfterFinished: 600,
      backoffLimit: 3,
    },
    imagePullPolicy: "Always",
    imagePullSecrets: [],
    image: { reference: "quay.io/kata-containers/kata-deploy", tag: "" },
    kubectlImage: { reference: "quay.io/kata-containers/kubectl", tag: "latest" },
    monitor: {
      enabled: false,
      image: { reference: "quay.io/kata-containers/kata-monitor", tag: "" },
      listenAddress: "0.0.0.0:8090",
      // "" = containerd.runtimeSocket, else the distribution's socket; "" log level = logLevel, debug, info.
      runtimeEndpoint: "",
      logLevel: "",
      port: 8090,
      securityContext: { privileged: false, runAsUser: 0, runAsGroup: 0 },
      resources: { limits: { cpu: "200m", memory: "300Mi" }, requests: { cpu: "200m", memory: "300Mi" } },
    },
    k8sDistribution: "k8s",
    containerd: { configDir: "", runtimeSocket: "", configFileName: "", userDropIn: "" },
    nodeSelector: {},
    tolerations: [],
    startupTaints: [],
    podLabels: {},
    podAnnotations: {},
    affinity: {},
    priorityClassName: "system-node-critical",
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
    resources: { requests: { cpu: "25m", memory: "16Mi" } },
    debug: false,
    logLevel: "",
    health: {
      port: 8090,
      startupProbe: {
        enabled: true,
        initialDelaySeconds: 1,
        periodSeconds: 10,
        failureThreshold: 60,
        timeoutSeconds: 3,
      },
      livenessProbe: { enabled: true, periodSeconds: 30, failureThreshold: 3, timeoutSeconds: 3 },
      readinessProbe: { enabled: true, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 },
    },
    snapshotter: { setup: ["nydus"], erofsMergeMode: "", erofsSnapshotterMode: "", erofsDmverity: false },
    shims: defaultShims(),
    defaultShim: {
      amd64: "qemu-runtime-rs",
      arm64: "qemu-runtime-rs",
      s390x: "qemu-runtime-rs",
      ppc64le: "qemu",
    },
    runtimeClasses: { enabled: true, createDefault: false, defaultName: "kata", overheadEnabled: true },
    env: { installationPrefix: "", hostOS: "", multiInstallSuffix: "" },
    "node-feature-discovery": { enabled: false },
    verification: { namespace: "default", timeout: 180, daemonsetTimeout: 1200, pod: "" },
    customRuntimes: { enabled: false, runtimes: {} },
  };
}

/** What chart 4.1.0's values.yaml changes from 4.0.0's (chart-versions.md §1.1). */
function defaults41(values: ChartValues): ChartValues {
  const job = values.job ?? {};
  delete job.nodeSelector;
  delete job.nodeSelectorExpressions;
  values.job = {
    dispatcherImage: job.dispatcherImage,
    dispatcherNodeSelector: {},
    dispatcherTolerations: [],
    parallelism: job.parallelism,
    nodes: job.nodes,
    waitForNodesSeconds: 120,
    nodeSettleSeconds: 15,
    waitNodeReadySeconds: 300,
    cleanup: {
      nodes: [],
      nodeSelector: {},
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: KATA_RUNTIME_LABEL, operator: "Exists" }] }],
        },
      },
    },
    ttlSecondsAfterFinished: job.ttlSecondsAfterFinished,
    activeDeadlineSeconds: 3600,
    backoffLimit: job.backoffLimit,
  };
  values.devkit = false;
  const shims = values.shims as ShimsValues;
  (shims["qemu-runtime-rs"] as ShimValues).supportedArches = ["amd64", "arm64", "s390x", "ppc64le"];
  shims["openvmm-azure-runtime-rs"] = shim(AMD64);
  values.defaultShim = { ...values.defaultShim, ppc64le: "qemu-runtime-rs" };
  values.nodeFeatureRules = { create: "auto" };
  return values;
}

/** A fresh copy of the chart's default values for `version` (callers may mutate it). */
export function chartDefaults(version: ChartVersion = CHART_VERSION): ChartValues {
  return atLeast41(version) ? defaults41(buildDefaults()) : buildDefaults();
}

/** Called for the cases where Helm prints a coalescing warning and keeps the user's value. */
export type CoalesceWarning = (message: string) => void;

function coalesceTables(
  user: Record<string, unknown>,
  defaults: Record<string, unknown>,
  prefix: string,
  warn: CoalesceWarning,
): void {
  for (const [key, defaultValue] of Object.entries(defaults)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!(key in user)) {
      user[key] = cloneJson(defaultValue);
      continue;
    }
    const userValue = user[key];
    if (userValue === null) {
      delete user[key];
    } else if (isMap(userValue) && isMap(defaultValue)) {
      coalesceTables(userValue, defaultValue, path, warn);
    } else if (isMap(defaultValue)) {
      warn(`cannot overwrite table with non table for ${path}; the given value is kept`);
    } else if (isMap(userValue) && defaultValue !== null) {
      warn(`destination for ${path} is a table; the default non-table value is ignored`);
    }
  }
}

/**
 * Helm's coalescing of user values over chart defaults (chartutil.CoalesceValues): maps merge key by key,
 * the user's value wins everywhere else (lists replace whole lists), and a user `null` deletes a key the
 * defaults have. A `null` for a key the defaults lack stays in the tree as `null`, as in Helm.
 * Neither argument is modified.
 */
export function mergeValues(
  defaults: ChartValues | Readonly<Record<string, unknown>>,
  user: ChartValuesInput | Readonly<Record<string, unknown>> | undefined | null,
  warn: CoalesceWarning = () => undefined,
): ChartValues {
  const result = cloneJson((user ?? {}) as Record<string, unknown>);
  coalesceTables(result, defaults, "", warn);
  return result;
}
