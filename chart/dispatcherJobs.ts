// The dispatcher hook Jobs as this project creates them in the chart's place (helm.v4.Chart drops hooks),
// plus the two objects the project adds for the bundled dispatcher. Pure, Node built-ins only.
//
// - "upstream": the chart's Job minus Helm's hook annotations; the image is `job.dispatcherImage`.
// - "bundled":  the same Job (name, labels, ServiceAccount, security contexts, templates mount, flags), but the
//   container runs our dispatcher script with a pinned stock Node.js image. Differences, and nothing else:
//   image, command (`node <mount>/<entry>` then the same flags), one extra read-only ConfigMap volume and
//   mount holding the script, and a pod annotation with the script's sha256 (so a new script is a new pod
//   template, and the run key can include it).

import { NODE_EVENT_NAMESPACE } from "../kube/jobStatus";
import { dns1123SubdomainErrors } from "../kube/validation";
import { chartDefaults, mergeValues, type ChartValues } from "./defaults";
import { cloneJson } from "./goValues";
import type { BindingLike, ConfigMap, Job, RoleLike } from "./k8s";
import { t63, type ChartNames } from "./names";
import {
  ChartValuesError,
  renderMerged,
  UPSTREAM_DISPATCHER_BINARY,
  withoutHookAnnotations,
  type DispatcherStage,
  type Release,
  type RenderedChart,
  type RenderOptions,
} from "./render";

export type DispatcherImplementation = "upstream" | "bundled";

/**
 * The pinned stock Node.js image that runs the bundled dispatcher. A tag, not a digest: no registry is
 * reachable from here to read one. It matches the Node version the project pins (package.json `node`),
 * and `-bookworm-slim` is the smallest Debian variant of the official image. Teams that mirror images may
 * pass their own reference (`bundle.image`), ideally with a digest.
 */
export const BUNDLED_DISPATCHER_IMAGE = "node:22.23.3-bookworm-slim";
/** Node.js options of the bundled dispatcher's container (a V8 heap cap; see bundledVariant). */
export const BUNDLED_DISPATCHER_NODE_OPTIONS = "--max-old-space-size=256";
export const DISPATCHER_SCRIPT_MOUNT = "/opt/kata-dispatcher";
export const DISPATCHER_SCRIPT_VOLUME = "dispatcher-script";
export const DISPATCHER_SCRIPT_HASH_ANNOTATION = "kata-deploy-pulumi/dispatcher-sha256";
/** Kubernetes refuses ConfigMaps whose data exceeds 1 MiB. */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

export interface DispatcherBundleRef {
  /** ConfigMap (in the release namespace) holding the script files; see `dispatcherScriptConfigMap`. */
  configMapName: string;
  /** File (ConfigMap key) that `node` runs. */
  entry: string;
  /** sha256 (hex) of the bundle, carried as a pod annotation. */
  sha256: string;
  /** Image override for mirrored registries; defaults to BUNDLED_DISPATCHER_IMAGE. */
  image?: string;
}

/** The shape `dispatcher/bundle.ts` produces (design.md §3). */
export interface DispatcherBundleFiles {
  files: Record<string, string>;
  entry: string;
  sha256: string;
}

const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function checkBundleRef(bundle: DispatcherBundleRef | undefined): DispatcherBundleRef {
  if (!bundle) {
    throw new ChartValuesError(`bundle: the bundled dispatcher needs { configMapName, entry, sha256 }`);
  }
  const nameErrors = dns1123SubdomainErrors(bundle.configMapName ?? "");
  if (nameErrors.length > 0) {
    throw new ChartValuesError(`bundle.configMapName: "${bundle.configMapName}" ${nameErrors.join("; ")}`);
  }
  if (!CONFIGMAP_KEY.test(bundle.entry ?? "") || bundle.entry === "." || bundle.entry === "..") {
    throw new ChartValuesError(
      `bundle.entry: "${bundle.entry}" must be a ConfigMap key (letters, digits, '-', '_', '.'), e.g. "dispatcher.js"`,
    );
  }
  if (!SHA256_HEX.test(bundle.sha256 ?? "")) {
    throw new ChartValuesError(`bundle.sha256: "${bundle.sha256}" must be 64 lowercase hex digits`);
  }
  if (bundle.image !== undefined && bundle.image.trim() === "") {
    throw new ChartValuesError(`bundle.image: give an image reference or leave it out`);
  }
  return bundle;
}

/**
 * A hook Job as the project creates it, for the user's values (the same values given to `renderChart`;
 * they are merged over the chart defaults here). Fails when the values do not select job mode, because
 * chart 4.0.0 renders no dispatcher then.
 */
export function dispatcherJob(
  stage: DispatcherStage,
  values: Readonly<Record<string, unknown>> | undefined,
  release: Release,
  implementation: DispatcherImplementation,
  bundle?: DispatcherBundleRef,
  options: RenderOptions = {},
): Job {
  const merged: ChartValues = mergeValues(chartDefaults(), values, options.onWarning);
  return dispatcherJobOf(stage, renderMerged(merged, release, options), implementation, bundle);
}

/** The hook Job as the project creates it, from a chart already rendered (no second render). */
export function dispatcherJobOf(
  stage: DispatcherStage,
  rendered: RenderedChart,
  implementation: DispatcherImplementation,
  bundle?: DispatcherBundleRef,
): Job {
  const chartJob = stage === "install" ? rendered.hooks.installDispatcher : rendered.hooks.cleanupDispatcher;
  if (!chartJob) {
    throw new ChartValuesError(
      `deploymentMode: ${JSON.stringify(rendered.values.deploymentMode ?? null)} renders no ${stage} dispatcher; chart 4.0.0 has one only with deploymentMode: job`,
    );
  }
  const job = withoutHookAnnotations(chartJob);
  if (implementation === "upstream") return job;
  if (implementation !== "bundled") {
    throw new ChartValuesError(
      `implementation: "${String(implementation)}" is not valid; use "upstream" or "bundled"`,
    );
  }
  return bundledVariant(job, checkBundleRef(bundle));
}

function bundledVariant(job: Job, bundle: DispatcherBundleRef): Job {
  const copy = cloneJson(job);
  const pod = copy.spec.template;
  const container = pod.spec.containers[0];
  const [binary, ...flags] = container.command ?? [];
  if (binary !== UPSTREAM_DISPATCHER_BINARY) {
    throw new Error(
      `internal: the chart's dispatcher command should start with ${UPSTREAM_DISPATCHER_BINARY}`,
    );
  }
  container.image = bundle.image ?? BUNDLED_DISPATCHER_IMAGE;
  container.command = ["node", `${DISPATCHER_SCRIPT_MOUNT}/${bundle.entry}`, ...flags];
  // Without a cap V8 grows its heap lazily and keeps garbage around: measured peak RSS 333 MiB at 10,000 nodes
  // uncapped against 200 MiB capped, with the same makespan (bench/). The dispatcher's live data is small.
  container.env = [
    ...(container.env ?? []),
    { name: "NODE_OPTIONS", value: BUNDLED_DISPATCHER_NODE_OPTIONS },
  ];
  container.volumeMounts = [
    ...(container.volumeMounts ?? []),
    { name: DISPATCHER_SCRIPT_VOLUME, mountPath: DISPATCHER_SCRIPT_MOUNT, readOnly: true },
  ];
  pod.spec.volumes = [
    ...(pod.spec.volumes ?? []),
    { name: DISPATCHER_SCRIPT_VOLUME, configMap: { name: bundle.configMapName } },
  ];
  pod.metadata.annotations = {
    ...(pod.metadata.annotations ?? {}),
    [DISPATCHER_SCRIPT_HASH_ANNOTATION]: bundle.sha256,
  };
  return copy;
}

/** The name this project gives the script ConfigMap: `t63(<base>-dispatcher-script)`. */
export function dispatcherScriptConfigMapName(names: ChartNames): string {
  return t63(`${names.base}-dispatcher-script`);
}

/** The ConfigMap that carries the bundled dispatcher into the pod (mounted at DISPATCHER_SCRIPT_MOUNT). */
export function dispatcherScriptConfigMap(
  bundle: DispatcherBundleFiles,
  names: ChartNames,
  release: Release,
): ConfigMap {
  if (!(bundle.entry in bundle.files)) {
    throw new ChartValuesError(
      `bundle.entry: "${bundle.entry}" is not one of the bundle's files (${Object.keys(bundle.files).join(", ")})`,
    );
  }
  let bytes = 0;
  for (const [key, text] of Object.entries(bundle.files)) {
    if (!CONFIGMAP_KEY.test(key)) {
      throw new ChartValuesError(
        `bundle.files: "${key}" is not a valid ConfigMap key (letters, digits, '-', '_', '.')`,
      );
    }
    bytes += Buffer.byteLength(key, "utf8") + Buffer.byteLength(text, "utf8");
  }
  if (bytes > CONFIGMAP_MAX_BYTES) {
    throw new ChartValuesError(
      `bundle.files: ${bytes} bytes exceed the 1 MiB a ConfigMap may hold; minify the bundle or split it`,
    );
  }
  if (!SHA256_HEX.test(bundle.sha256)) {
    throw new ChartValuesError(`bundle.sha256: "${bundle.sha256}" must be 64 lowercase hex digits`);
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: dispatcherScriptConfigMapName(names),
      namespace: release.namespace,
      labels: { "app.kubernetes.io/name": "kata-deploy", "app.kubernetes.io/instance": release.name },
      annotations: { [DISPATCHER_SCRIPT_HASH_ANNOTATION]: bundle.sha256 },
    },
    data: { ...bundle.files },
  };
}

/** `<base>-dispatcher-pod-reader`: the name of both the Role and its RoleBinding. */
export function dispatcherPodReaderName(names: ChartNames): string {
  return `${names.base}-dispatcher-pod-reader`;
}

/**
 * This project's addition to the chart's dispatcher RBAC, in the release namespace:
 * - pods get/list, so the dispatcher and the waiter can name why a node's Job failed (without it both
 *   dispatchers still work, with less detailed failure reasons);
 * - batch jobs get/list/watch, because the chart actually published as 4.0.0 grants the dispatcher Role only
 *   jobs create/get/delete (no list, no watch), while our bundled dispatcher lists and watches its per-node
 *   Jobs. With the project's 4.0.0 (jobs create/get/list/watch/delete) this rule is redundant and harmless.
 * RBAC is additive, so one more Role bound to the dispatcher ServiceAccount covers both chart variants.
 */
export function dispatcherPodReaderRole(names: ChartNames, release: Release): RoleLike {
  return {
    kind: "Role",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: dispatcherPodReaderName(names), namespace: release.namespace },
    rules: [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
      { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch"] },
    ],
  };
}

export function dispatcherPodReaderRoleBinding(names: ChartNames, release: Release): BindingLike {
  return {
    kind: "RoleBinding",
    apiVersion: "rbac.authorization.k8s.io/v1",
    metadata: { name: dispatcherPodReaderName(names), namespace: release.namespace },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: dispatcherPodReaderName(names) },
    subjects: [
      { kind: "ServiceAccount", name: names.dispatcherServiceAccount, namespace: release.namespace },
    ],
  };
}

/** The objects that let the bundled dispatcher record each node's outcome (see dispatcherRecorderRbac). */
export interface DispatcherRecorderRbac {
  nodeRole: RoleLike;
  nodeBinding: BindingLike;
  eventsRole: RoleLike;
  eventsBinding: BindingLike;
}

/**
 * This project's addition for chart 4.0.0, whose dispatcher ClusterRole grants nodes list only: nodes patch
 * (cluster-wide), so the bundled dispatcher can write each node's outcome record (label, annotations, payload digest:
 * kube/jobStatus.ts), and events create in namespace `default`, the only place an Event about a Node is accepted.
 * Charts 4.1.0 and 4.2.0 grant the same to their own dispatcher. Named after the chart's dispatcher ClusterRole, so
 * releases that may coexist (different suffixes) get their own.
 */
export function dispatcherRecorderRbac(names: ChartNames, release: Release): DispatcherRecorderRbac {
  const name = `${names.dispatcherNodeClusterRole}-recorder`;
  const subjects = [
    { kind: "ServiceAccount", name: names.dispatcherServiceAccount, namespace: release.namespace },
  ];
  const events = `${names.base}-dispatcher-events-${release.namespace}`;
  return {
    nodeRole: {
      kind: "ClusterRole",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name },
      rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["patch"] }],
    },
    nodeBinding: {
      kind: "ClusterRoleBinding",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects,
    },
    eventsRole: {
      kind: "Role",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: events, namespace: NODE_EVENT_NAMESPACE },
      rules: [{ apiGroups: [""], resources: ["events"], verbs: ["create"] }],
    },
    eventsBinding: {
      kind: "RoleBinding",
      apiVersion: "rbac.authorization.k8s.io/v1",
      metadata: { name: events, namespace: NODE_EVENT_NAMESPACE },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: events },
      subjects,
    },
  };
}
