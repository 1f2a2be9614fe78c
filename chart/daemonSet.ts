// DaemonSet mode of chart 4.0.0 (§2.2, OLD column). Node built-ins only.

import { atLeast41, CHART_VERSION, chartDefaults, type ChartValues, type ChartVersion } from "./defaults";
import { cloneJson, goPrint, isMap, truthy } from "./goValues";
import type { DaemonSet, Probe } from "./k8s";
import { chartNames } from "./names";
import {
  ChartValuesError,
  commonEnv,
  commonVolumeMounts,
  commonVolumes,
  kataDeployImage,
  multiInstallSuffix,
} from "./workload";
import type { Release, RenderOptions } from "./renderTypes";
import { compact, podPlacement, printedScalar, withValue } from "./renderHelpers";

/**
 * The template's own fallbacks for `health` are the chart's default values (values.yaml): one definition, in
 * `chartDefaults`, serves both.
 */
function healthDefaults(version: ChartVersion): Readonly<Record<string, unknown>> {
  return chartDefaults(version).health ?? {};
}

/**
 * Sprig's `merge` (mergo without override): a key missing from the user's tree *or holding an empty value*
 * (false, 0, "", empty list or map) takes the built-in default; maps merge recursively. So, as in the chart,
 * `health.startupProbe.enabled: false` does not switch the probe off.
 */
export function sprigMerge(
  user: unknown,
  defaults: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = isMap(user) ? cloneJson(user) : {};
  for (const [key, fallback] of Object.entries(defaults)) {
    const current = out[key];
    if (isMap(current) && isMap(fallback)) out[key] = sprigMerge(current, fallback);
    else if (!truthy(current)) out[key] = cloneJson(fallback);
  }
  return out;
}

export function probe(
  path: string,
  port: unknown,
  settings: Record<string, unknown>,
  initialDelay: boolean,
): Probe {
  return compact({
    httpGet: { path, port: printedScalar(port) as number },
    initialDelaySeconds: initialDelay ? (printedScalar(settings.initialDelaySeconds) as number) : undefined,
    periodSeconds: printedScalar(settings.periodSeconds) as number,
    failureThreshold: printedScalar(settings.failureThreshold) as number,
    timeoutSeconds: printedScalar(settings.timeoutSeconds) as number,
  });
}

/** The six virtualization terms the DaemonSet requires when this release enables node-feature-discovery. */
export function nfdAffinity(): Record<string, unknown> {
  const arch = (...values: string[]) => ({ key: "kubernetes.io/arch", operator: "In", values });
  const cpuid = (flag: string) => ({
    key: `feature.node.kubernetes.io/cpu-cpuid.${flag}`,
    operator: "In",
    values: ["true"],
  });
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [cpuid("VMX"), arch("amd64")] },
          { matchExpressions: [cpuid("SVM"), arch("amd64")] },
          { matchExpressions: [arch("arm64", "aarch64")] },
          { matchExpressions: [arch("s390x")] },
          { matchExpressions: [arch("ppc64le")] },
          { matchExpressions: [arch("riscv64")] },
        ],
      },
    },
  };
}

type Term = { matchExpressions?: unknown[]; matchFields?: unknown[] };

/**
 * `kata-deploy.daemonsetAffinity`: the user's `affinity`; with node-feature-discovery enabled, the NFD terms
 * added (no user nodeAffinity) or cross-multiplied with the user's required terms (each NFD term AND each user
 * term), so the virtualization requirement cannot be bypassed.
 */
export function daemonsetAffinity(values: ChartValues): Record<string, unknown> | undefined {
  const affinity: Record<string, unknown> = isMap(values.affinity) ? cloneJson(values.affinity) : {};
  if (truthy(values["node-feature-discovery"]?.enabled)) {
    const nfd = nfdAffinity();
    if (!("nodeAffinity" in affinity)) {
      affinity.nodeAffinity = nfd.nodeAffinity;
    } else {
      const user: Record<string, unknown> = isMap(affinity.nodeAffinity) ? affinity.nodeAffinity : {};
      const nfdTerms = (
        nfd.nodeAffinity as { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: Term[] } }
      ).requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
      const required = user.requiredDuringSchedulingIgnoredDuringExecution;
      const userTerms: Term[] =
        isMap(required) && truthy(required.nodeSelectorTerms) ? (required.nodeSelectorTerms as Term[]) : [];
      const list = (v: unknown): unknown[] => (truthy(v) && Array.isArray(v) ? v : []);
      const merged = !truthy(userTerms)
        ? nfdTerms
        : nfdTerms.flatMap((n) =>
            userTerms.map((u) => {
              const exprs = [...list(n.matchExpressions), ...list(u.matchExpressions)];
              const fields = [...list(n.matchFields), ...list(u.matchFields)];
              return {
                ...(exprs.length > 0 ? { matchExpressions: exprs } : {}),
                ...(fields.length > 0 ? { matchFields: fields } : {}),
              };
            }),
          );
      affinity.nodeAffinity = {
        ...user,
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: merged },
      };
    }
  }
  return truthy(affinity) ? affinity : undefined;
}

/** DaemonSet pod labels: `podLabels` without `name`, then `name: <base>` (which always wins). */
export function daemonSetPodLabels(values: ChartValues, name: string): Record<string, string> {
  const own = isMap(values.podLabels) ? values.podLabels : {};
  const labels: Record<string, string> = {};
  for (const key of Object.keys(own).sort()) if (key !== "name") labels[key] = goPrint(own[key]);
  return { ...labels, name };
}

export function daemonSet(
  values: ChartValues,
  release: Release,
  version: ChartVersion = CHART_VERSION,
  podAnnotations: Record<string, string> | undefined = withValue<Record<string, string>>(
    values.podAnnotations,
  ),
): DaemonSet {
  const v41 = atLeast41(version);
  const names = chartNames(multiInstallSuffix(values));
  const health = sprigMerge(values.health, healthDefaults(version));
  const startup = health.startupProbe as Record<string, unknown>;
  const liveness = health.livenessProbe as Record<string, unknown>;
  const readiness = health.readinessProbe as Record<string, unknown>;
  let logLevel = goPrint(values.logLevel).trim();
  if (!logLevel && truthy(values.debug)) logLevel = "debug";
  return compact({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: names.daemonSet, namespace: release.namespace },
    spec: {
      selector: { matchLabels: { name: names.daemonSet } },
      template: {
        metadata: {
          labels: daemonSetPodLabels(values, names.daemonSet),
          annotations: podAnnotations,
        },
        spec: {
          imagePullSecrets: withValue(values.imagePullSecrets),
          serviceAccountName: names.serviceAccount,
          nodeSelector: withValue(values.nodeSelector),
          ...podPlacement(values),
          affinity: daemonsetAffinity(values),
          // 4.1.0 reaches the host through precise mounts, without the host PID namespace or privilege.
          hostPID: v41 ? undefined : true,
          // Lets the SIGTERM cleanup (CRI restart, node back to Ready) finish before a force-kill.
          terminationGracePeriodSeconds: 600,
          containers: [
            {
              name: "kube-kata",
              image: kataDeployImage(values, version),
              imagePullPolicy: printedScalar(values.imagePullPolicy) as string | undefined,
              command: ["/usr/bin/kata-deploy", ...(logLevel ? ["--log-level", logLevel] : []), "install"],
              env: [...commonEnv(values, version), { name: "HEALTH_PORT", value: goPrint(health.port) }],
              securityContext: v41
                ? { privileged: false, readOnlyRootFilesystem: true }
                : { privileged: true },
              startupProbe: truthy(startup.enabled)
                ? probe("/readyz", health.port, startup, true)
                : undefined,
              livenessProbe: truthy(liveness.enabled)
                ? probe("/healthz", health.port, liveness, false)
                : undefined,
              readinessProbe: truthy(readiness.enabled)
                ? probe("/readyz", health.port, readiness, false)
                : undefined,
              resources: withValue(values.resources),
              volumeMounts: commonVolumeMounts(values, version),
            },
          ],
          volumes: commonVolumes(values, version),
        },
      },
      updateStrategy: withValue(values.updateStrategy),
    },
  });
}

export function nfdConflict(values: ChartValues, release: Release, options: RenderOptions): void {
  if (!truthy(values["node-feature-discovery"]?.enabled) || !options.externalNfdNamespace) return;
  throw new ChartValuesError(
    `\n\nERROR: Cannot deploy kata-deploy with node-feature-discovery.enabled=true\n\n` +
      `node-feature-discovery is already installed in namespace '${options.externalNfdNamespace}'.\n\n` +
      `To fix this, deploy with node-feature-discovery disabled:\n` +
      `  helm upgrade --install ${release.name} ... --set node-feature-discovery.enabled=false\n\n` +
      `The existing node-feature-discovery installation will work with kata-deploy.\n`,
  );
}
