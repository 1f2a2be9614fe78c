// Validation of KataDeploy's arguments (pure: no Pulumi, no I/O). The typed chart fields and the raw
// `values` are merged first, then the *effective* values are checked, so a key the component understands
// is checked wherever it came from; each problem is reported at the path the user wrote (`job.parallelism`
// or `values.job.parallelism`) with what would be valid. Values not known yet (Pulumi outputs, unknowns in
// preview) are passed in as UNKNOWN and every check that would need them is skipped.
import { imageNameErrors, imageReferenceErrors, imageTagErrors, splitImageReference } from "./imageReference";
import { z } from "zod";
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
} from "../kube/validation";
import {
  CpuArch,
  DeploymentMode,
  DispatcherImplementation,
  ImagePullPolicy,
  K8sDistribution,
  NodeSelectorOperator,
  SnapshotterName,
  TaintEffect,
  TolerationOperator,
} from "./args";
import {
  ARCHES,
  atLeast41,
  CHART_VERSIONS,
  ChartValues,
  ChartVersion,
  chartDefaults,
  isChartVersion,
  mergeValues as coalesceValues,
} from "../chart/defaults";
import { removedJobSelectionKeyErrors } from "../chart/jobMode41";
import { helmReleaseNameErrors } from "../chart/render";
import { CHART_NAME, chartNames, runtimeClassName } from "../chart/names";
import { enabledShims as chartEnabledShims } from "../chart/workload";
import { ROLLOUT_DEFAULTS } from "../rollout/defaults";
import { CHART_REFERENCE, CHART_VERSION, DEFAULT_NAMESPACE } from "./chartDefaults";
import { PARALLELISM_MIN } from "../chart/parallelism";

/** Stands for a value that is not known yet (an Output or Promise, or an unknown in preview). */
export const UNKNOWN: unique symbol = Symbol("kata-deploy:unknown");
export type Unknown = typeof UNKNOWN;

/** One problem with the arguments: where (as the user wrote it) and what would be valid. */
export interface ArgIssue {
  path: string;
  message: string;
}

export class KataDeployArgsError extends Error {
  override readonly name = "KataDeployArgsError";
  constructor(
    readonly issues: readonly ArgIssue[],
    context = "KataDeploy",
  ) {
    super(
      `${context}: ${issues.length} invalid argument${issues.length === 1 ? "" : "s"}:\n` +
        issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n"),
    );
    this.name = "KataDeployArgsError";
  }
}

type Values = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Values {
  return (
    typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
  );
}

// ---------------------------------------------------------------------------------------------------
// Paths

/** `job.nodes[2]`, `nodeSelector["kubernetes.io/os"]`: zod's own path notation. */
export function formatPath(segments: readonly PropertyKey[]): string {
  return z.core.toDotPath(segments);
}

/** True when the path crosses a value that is not known yet: checks there are skipped, not failed. */
function touchesUnknown(root: unknown, path: readonly PropertyKey[]): boolean {
  let node = root;
  if (node === UNKNOWN) return true;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return false;
    node = (node as Record<PropertyKey, unknown>)[seg];
    if (node === UNKNOWN) return true;
  }
  return false;
}

export function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (isPlainObject(v)) return Object.values(v).some(containsUnknown);
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Merging

/** Deep copy without `undefined` entries (an unset optional field is no value at all). */
function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (isPlainObject(v)) {
    const out: Values = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = stripUndefined(x);
    return out;
  }
  return v;
}

/**
 * `over` deep-merged onto `base`: maps merge key by key, anything else (lists, scalars, null) from `over`
 * replaces. `conflicts` receives every path where both set a different non-map value.
 */
export function overlayValues(
  base: Values,
  over: Values,
  conflicts: PropertyKey[][] = [],
  path: PropertyKey[] = [],
): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = base[k];
    if (isPlainObject(b) && isPlainObject(v)) out[k] = overlayValues(b, v, conflicts, [...path, k]);
    else {
      if (b !== undefined && JSON.stringify(b) !== JSON.stringify(v)) conflicts.push([...path, k]);
      out[k] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Schemas. Messages say what would be valid; generic zod issues are worded by `zodMessage`.

type Ctx = z.core.$RefinementCtx;

function addErrors(ctx: Ctx, errors: string[], prefix: string, path: PropertyKey[] = []): void {
  for (const e of errors)
    ctx.addIssue({ code: "custom", message: `${prefix}: ${e}`, path, input: undefined });
}

const labelKey = z.string().superRefine((k, ctx) => addErrors(ctx, labelKeyErrors(k), `label key "${k}"`));
const labelValue = z
  .string()
  .superRefine((v, ctx) => addErrors(ctx, labelValueErrors(v), `label value "${v}"`));

/** `key: value` label equalities; values must be strings (the chart renders others as `%!s(bool=true)`). */
const labelMap = z.record(z.string(), z.unknown()).superRefine((m, ctx) => {
  for (const [k, v] of Object.entries(m)) {
    addErrors(ctx, labelKeyErrors(k), `label key "${k}"`, [k]);
    if (v === UNKNOWN) continue;
    if (typeof v !== "string") {
      ctx.addIssue({
        code: "custom",
        path: [k],
        input: v,
        message: `label value must be a string: quote it ("${String(v)}"); the chart renders other types as garbage such as %!s(bool=true)`,
      });
    } else addErrors(ctx, labelValueErrors(v), `label value "${v}"`, [k]);
  }
});

const nodeName = z
  .string()
  .superRefine((n, ctx) =>
    addErrors(ctx, dns1123SubdomainErrors(n), `node name "${n}" is not a DNS-1123 subdomain`),
  );

const nodeList = z.array(nodeName).superRefine((nodes, ctx) => {
  nodes.forEach((n, i) => {
    if (typeof n === "string" && nodes.indexOf(n) !== i) {
      ctx.addIssue({
        code: "custom",
        path: [i],
        input: n,
        message: `node "${n}" is listed twice; list each node once`,
      });
    }
  });
});

const OPERATORS = Object.values(NodeSelectorOperator) as string[];

const nodeSelectorRequirement = z
  .strictObject({
    key: labelKey,
    operator: z.string(),
    values: z.array(labelValue).nullish(),
  })
  .superRefine((r, ctx) => {
    if (typeof r.operator !== "string") return;
    if (!OPERATORS.includes(r.operator)) {
      ctx.addIssue({
        code: "custom",
        path: ["operator"],
        input: r.operator,
        message: `unsupported operator "${r.operator}": use In, NotIn, Exists or DoesNotExist (case-sensitive; Gt and Lt cannot be expressed in a label selector)`,
      });
      return;
    }
    if ((r.values as unknown) === UNKNOWN) return;
    const count = Array.isArray(r.values) ? r.values.length : 0;
    if ((r.operator === "In" || r.operator === "NotIn") && count === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: r.values,
        message: `operator ${r.operator} needs at least one value (the chart would render "${r.key} ${r.operator.toLowerCase()} ()", which selects nothing useful); add values, or use ${r.operator === "In" ? "Exists" : "DoesNotExist"} for key presence`,
      });
    }
    if ((r.operator === "Exists" || r.operator === "DoesNotExist") && count > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: r.values,
        message: `operator ${r.operator} takes no values; remove values, or use ${r.operator === "Exists" ? "In" : "NotIn"} to match them`,
      });
    }
  });

const selectorExpressions = z.array(nodeSelectorRequirement);

/** `reference` + `tag` as the chart composes them (a reference holding "@" is used verbatim). */
const imageRef = z
  .strictObject({
    reference: z.string().optional(),
    tag: z.string().optional(),
  })
  .superRefine((img, ctx) => {
    const ref = img.reference;
    if (typeof ref === "string") {
      if (ref.length === 0 || /\s/.test(ref)) {
        ctx.addIssue({
          code: "custom",
          path: ["reference"],
          input: ref,
          message: `"${ref}" is not an image reference; give a repository such as quay.io/kata-containers/kata-deploy`,
        });
      } else if (ref.includes("@")) {
        addErrors(ctx, imageReferenceErrors(ref), `"${ref}"`, ["reference"]);
      } else {
        const { name, tag } = splitImageReference(ref);
        if (tag !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["reference"],
            input: ref,
            message: `"${ref}" carries a tag, and the chart always appends ":<tag>" (the appVersion when tag is empty); put the tag in tag, or pin a digest (repo@sha256:...)`,
          });
        }
        addErrors(ctx, imageNameErrors(name), `"${ref}"`, ["reference"]);
      }
    }
    const tag = img.tag;
    if (typeof tag === "string" && tag !== "") {
      for (const e of imageTagErrors(tag))
        ctx.addIssue({
          code: "custom",
          path: ["tag"],
          input: tag,
          message: `${e} (empty = the chart's appVersion)`,
        });
    }
  });

const toleration = z
  .strictObject({
    key: z.string().optional(),
    operator: z.enum(TolerationOperator).optional(),
    value: z.string().optional(),
    effect: z.enum(TaintEffect).optional(),
    tolerationSeconds: z.int().optional(),
  })
  .superRefine((t, ctx) => {
    if (typeof t.key === "string" && t.key !== "")
      addErrors(ctx, labelKeyErrors(t.key), `key "${t.key}"`, ["key"]);
    if (typeof t.value === "string" && t.value !== "")
      addErrors(ctx, labelValueErrors(t.value), `value "${t.value}"`, ["value"]);
    const operator = t.operator ?? "Equal";
    if (operator === "Exists" && typeof t.value === "string" && t.value !== "") {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        input: t.value,
        message: "a toleration with operator Exists takes no value; remove value, or use operator Equal",
      });
    }
    if ((t.key === undefined || t.key === "") && operator !== "Exists") {
      ctx.addIssue({
        code: "custom",
        path: ["operator"],
        input: t.operator,
        message: "a toleration without a key must use operator Exists (it then tolerates every taint)",
      });
    }
    if (
      t.tolerationSeconds !== undefined &&
      (t.tolerationSeconds as unknown) !== UNKNOWN &&
      t.effect !== "NoExecute"
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["tolerationSeconds"],
        input: t.tolerationSeconds,
        message: "tolerationSeconds applies only to effect NoExecute; set effect: NoExecute or remove it",
      });
    }
  });

/** A schema-level message, except for null, which gets the general "null removes a default" wording. */
const unlessNull = (message: string) => (iss: { input?: unknown }) =>
  iss.input === null ? undefined : message;

const nonNegativeInt = (what: string) =>
  z
    .int({ error: unlessNull(`must be a whole number ≥ 0 (${what})`) })
    .min(0, { error: `must be ≥ 0 (${what})` });

const shimSettings = z.strictObject({
  enabled: z.boolean().nullish(),
  supportedArches: z.array(z.enum(CpuArch)).nullish(),
  allowedHypervisorAnnotations: z.array(z.string()).nullish(),
  containerd: z
    .strictObject({ snapshotter: z.string().optional(), forceGuestPull: z.boolean().optional() })
    .optional(),
  crio: z.strictObject({ guestPull: z.boolean().optional() }).optional(),
  agent: z.strictObject({ httpsProxy: z.string().optional(), noProxy: z.string().optional() }).optional(),
  dropIn: z.string().optional(),
  runtimeClass: z
    .strictObject({
      nodeSelector: labelMap.nullish(),
      overheadEnabled: z.boolean().optional(),
      overhead: z.strictObject({ memory: z.string().optional(), cpu: z.string().optional() }).optional(),
    })
    .optional(),
});

const shims = z
  .object({ disableAll: z.boolean().optional() })
  .catchall(shimSettings)
  .superRefine((m, ctx) => {
    for (const name of Object.keys(m)) {
      if (name === "disableAll") continue;
      addErrors(
        ctx,
        dns1123LabelErrors(`kata-${name}`),
        `shim name "${name}" must fit the RuntimeClass handler kata-${name}`,
        [name],
      );
    }
  });

const defaultShim = z.strictObject(
  Object.fromEntries(ARCHES.map((arch) => [arch, z.string().optional()])) as Record<
    (typeof ARCHES)[number],
    z.ZodOptional<z.ZodString>
  >,
);

const selectionFields = {
  nodes: nodeList.nullish(),
  nodeSelector: labelMap.nullish(),
  nodeSelectorExpressions: selectorExpressions.nullish(),
};

const job = z.strictObject({
  dispatcherImage: imageRef.optional(),
  parallelism: z
    .int({
      error: unlessNull(
        `must be a whole number ≥ ${PARALLELISM_MIN} (the most per-node Jobs in flight at once)`,
      ),
    })
    .min(PARALLELISM_MIN, {
      error: `must be ≥ ${PARALLELISM_MIN} (the most per-node Jobs in flight at once)`,
    })
    .optional(),
  ...selectionFields,
  cleanup: z.strictObject(selectionFields).optional(),
  backoffLimit: nonNegativeInt("retries of each per-node Job").optional(),
  ttlSecondsAfterFinished: nonNegativeInt("seconds a finished Job is kept").optional(),
});

const nodeAffinity = z.looseObject({
  requiredDuringSchedulingIgnoredDuringExecution: z
    .looseObject({
      nodeSelectorTerms: z
        .array(z.looseObject({ matchExpressions: selectorExpressions.nullish() }))
        .nullish(),
    })
    .nullish(),
});

/**
 * Chart 4.1.0's `job` block: node selection moved to the top-level `nodeSelector` and `affinity` (the removed
 * keys are refused with the chart's migration hint by chartVersionRules), plus where the dispatcher runs and
 * its timing.
 */
const job41 = job.omit({ nodeSelector: true, nodeSelectorExpressions: true, cleanup: true }).extend({
  dispatcherNodeSelector: labelMap.nullish(),
  dispatcherTolerations: z.array(toleration).nullish(),
  waitForNodesSeconds: nonNegativeInt("seconds to wait for eligible nodes (0: resolve once)").optional(),
  nodeSettleSeconds: nonNegativeInt("seconds the eligible set must stay unchanged").optional(),
  waitNodeReadySeconds: nonNegativeInt("seconds to wait for a node to be Ready after its Job").optional(),
  activeDeadlineSeconds: nonNegativeInt("deadline of each per-node Job, in seconds").optional(),
  cleanup: z
    .strictObject({
      nodes: nodeList.nullish(),
      nodeSelector: labelMap.nullish(),
      nodeAffinity: nodeAffinity.nullish(),
    })
    .optional(),
});

const priorityClassName = z
  .string()
  .superRefine((n, ctx) => addErrors(ctx, dns1123SubdomainErrors(n), `priority class "${n}"`));

/** Chart 4.0.0 value keys the component types; the root stays open for the chart's other keys. */
export const CHART_FIELDS = {
  deploymentMode: z.enum(DeploymentMode).optional(),
  image: imageRef.optional(),
  imagePullPolicy: z.enum(ImagePullPolicy).optional(),
  imagePullSecrets: z
    .array(
      z.strictObject({
        name: z
          .string()
          .superRefine((n, ctx) => addErrors(ctx, dns1123SubdomainErrors(n), `secret name "${n}"`)),
      }),
    )
    .nullish(),
  k8sDistribution: z.enum(K8sDistribution).optional(),
  debug: z.boolean().optional(),
  shims: shims.optional(),
  defaultShim: defaultShim.optional(),
  snapshotter: z
    .strictObject({
      setup: z.array(z.enum(SnapshotterName)).nullish(),
      erofsMergeMode: z.enum(["", "merged", "unmerged"]).optional(),
      erofsSnapshotterMode: z.enum(["", "disk", "memory"]).optional(),
      erofsDmverity: z.boolean().optional(),
    })
    .optional(),
  tolerations: z.array(toleration).nullish(),
  nodeSelector: labelMap.nullish(),
  priorityClassName: priorityClassName.optional(),
  env: z
    .strictObject({
      multiInstallSuffix: z.string().optional(),
      installationPrefix: z.string().optional(),
      hostOS: z.string().optional(),
    })
    .optional(),
  job: job.optional(),
};
const chartValues = z.looseObject(CHART_FIELDS);
/** Chart 4.1.0: the 4.1.0 job block, and the top-level affinity that now selects job-mode nodes too. */
const chartValues41 = z.looseObject({
  ...CHART_FIELDS,
  job: job41.optional(),
  affinity: z.looseObject({ nodeAffinity: nodeAffinity.nullish() }).nullish(),
});

/** The value schema of a chart version. */
function valuesSchemaFor(version: ChartVersion): z.ZodType {
  return atLeast41(version) ? chartValues41 : chartValues;
}

/** The job-mode keys chart 4.1.0 removed: refused with the chart's hint (chartVersionRules), not as unknown. */
const REMOVED_IN_41 = new Set([
  "job.nodeSelector",
  "job.nodeAffinity",
  "job.nodeSelectorExpressions",
  "job.cleanup.nodeSelectorExpressions",
]);

const chartSource = z
  .strictObject({
    repository: z.string().optional(),
    version: z.string().optional(),
    path: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (typeof c.repository === "string" && !/^(oci|https?):\/\/\S+$/.test(c.repository)) {
      ctx.addIssue({
        code: "custom",
        path: ["repository"],
        input: c.repository,
        message: `"${c.repository}" is neither an oci:// registry path nor an http(s):// chart repository URL (for a chart directory use chart.path)`,
      });
    }
    if (typeof c.version === "string" && (c.version.trim() === "" || /\s/.test(c.version))) {
      ctx.addIssue({
        code: "custom",
        path: ["version"],
        input: c.version,
        message: `"${c.version}" is not a chart version; give one such as ${CHART_VERSION}`,
      });
    }
    if (typeof c.path === "string" && c.path.trim() === "") {
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        input: c.path,
        message: "give the chart directory, or omit path",
      });
    }
    if (c.path !== undefined && c.repository !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        input: c.path,
        message:
          "chart.path and chart.repository are exclusive: a local chart is used as is; keep one of them",
      });
    }
    if (c.path !== undefined && c.version !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["version"],
        input: c.version,
        message:
          "chart.version does not apply to a local chart.path (its Chart.yaml has the version); remove it",
      });
    }
  });

function positiveSeconds(what: string) {
  return z
    .int({ error: unlessNull(`must be a whole number of seconds ≥ 1 (${what})`) })
    .min(1, { error: `must be ≥ 1 (${what}, in seconds)` });
}

/** Arguments that are the component's own (not chart values). */
export const COMPONENT_FIELDS = {
  namespace: z
    .string()
    .superRefine((n, ctx) => addErrors(ctx, dns1123LabelErrors(n), `namespace "${n}"`))
    .default(DEFAULT_NAMESPACE),
  createNamespace: z.boolean().default(false),
  releaseName: z
    .string()
    .superRefine((n, ctx) => addErrors(ctx, helmReleaseNameErrors(n), `Helm release name "${n}"`))
    .optional(),
  chart: chartSource.optional(),
  values: z.record(z.string(), z.unknown()).optional(),
  // Never echo the kubeconfig in a message: it holds credentials (zodMessage prints only its type).
  kubeconfig: z
    .string()
    .refine((k) => k.trim() !== "", {
      error:
        "is empty; give kubeconfig YAML/JSON text, base64 of it or a file path, or omit it to use $KUBECONFIG, ~/.kube/config or in-cluster",
    })
    .optional(),
  dispatcherImplementation: z.enum(DispatcherImplementation).default(DispatcherImplementation.Bundled),
  rerunToken: z.string().optional(),
  rollout: z
    .strictObject({
      timeoutSeconds: positiveSeconds("the limit of one install or cleanup run").default(
        ROLLOUT_DEFAULTS.timeoutSeconds,
      ),
      healDrift: z.boolean().default(ROLLOUT_DEFAULTS.healDrift),
      cleanupOnDestroy: z.boolean().default(ROLLOUT_DEFAULTS.cleanupOnDestroy),
      stuckGraceSeconds: positiveSeconds("how long a stuck pod may stay stuck before its node fails").default(
        ROLLOUT_DEFAULTS.stuckGraceSeconds,
      ),
    })
    // prefault: an omitted `rollout` is parsed as `{}`, so its fields get their defaults.
    .prefault({}),
};

/** The component's own arguments (not chart values), parsed: every omitted field has its default. */
export const componentArgs = z.strictObject(COMPONENT_FIELDS);
export type ComponentArgs = z.output<typeof componentArgs>;
/** `rollout.*` after parsing: every field set. */
export type RolloutSettings = ComponentArgs["rollout"];
/** The defaults of the component's own arguments, as the schema applies them. */
export const COMPONENT_DEFAULTS: Readonly<ComponentArgs> = componentArgs.parse({});

/** Typed args that do not sit at their chart path. */
const RENAMED: Readonly<Record<string, readonly string[]>> = { disableAllShims: ["shims", "disableAll"] };

export const CHART_KEYS: readonly string[] = Object.keys(CHART_FIELDS);
/** Every top-level argument name, in schema order. */
export const ARG_NAMES: readonly string[] = [
  ...Object.keys(COMPONENT_FIELDS),
  ...CHART_KEYS,
  ...Object.keys(RENAMED),
];

const argsShape = z.strictObject({
  ...COMPONENT_FIELDS,
  ...Object.fromEntries([...CHART_KEYS, ...Object.keys(RENAMED)].map((k) => [k, z.unknown().optional()])),
});

// ---------------------------------------------------------------------------------------------------
// zod issue wording

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "a map";
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  int: "a whole number",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  array: "a list",
  object: "a map",
  record: "a map",
};

function zodMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case "invalid_type": {
      const expected = EXPECTED[iss.expected] ?? iss.expected;
      if (iss.input === null) {
        return `null would remove the chart's default here, which the chart needs; omit the key to keep the default (or give ${expected})`;
      }
      return `expected ${expected}, got ${describe(iss.input)}`;
    }
    case "invalid_value":
      return `${JSON.stringify(iss.input)} is not valid; use one of ${iss.values.map((v) => JSON.stringify(v)).join(", ")} (case-sensitive)`;
    default:
      return undefined;
  }
}

/** Closest candidate within two edits, for "did you mean". */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i][j] = Math.min(
          d[i - 1][j] + 1,
          d[i][j - 1] + 1,
          d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
    return d[a.length][b.length];
  };
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  return best;
}

/** The schema inside optional, nullable and defaulted wrappers. */
export function unwrapSchema(t: z.core.$ZodType): z.core.$ZodType {
  let cur = t;
  for (;;) {
    const def = cur._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType };
    const wrapper = ["optional", "nullable", "default", "prefault"].includes(def.type);
    if (wrapper && def.innerType) cur = def.innerType;
    else return cur;
  }
}

/** The keys a strict object schema accepts at `path` (for "did you mean" and "valid keys"). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = schema;
  for (const seg of path) {
    if (!s) return [];
    s = unwrapSchema(s);
    const def = s._zod.def as z.core.$ZodTypeDef & {
      shape?: Record<string, z.core.$ZodType>;
      catchall?: z.core.$ZodType;
      element?: z.core.$ZodType;
      valueType?: z.core.$ZodType;
    };
    if (def.type === "object") s = def.shape?.[String(seg)] ?? def.catchall;
    else if (def.type === "array") s = def.element;
    else if (def.type === "record") s = def.valueType;
    else return [];
  }
  if (!s) return [];
  const def = unwrapSchema(s)._zod.def as z.core.$ZodTypeDef & { shape?: Record<string, unknown> };
  return def.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/**
 * The field names the validation knows at an argument path (e.g. `["job", "cleanup"]`, `["shims", "*"]` for a
 * shim's settings, `["tolerations", 0]` for a list element). Lets tests hold the TypeScript interfaces and the
 * zod rules to the same field set.
 */
export function validatedFieldNames(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return [...ARG_NAMES];
  const [head, ...rest] = path;
  if (typeof head === "string" && head in COMPONENT_FIELDS) {
    return knownKeysAt(componentArgs, path);
  }
  return knownKeysAt(chartValues, [head, ...rest]);
}

// ---------------------------------------------------------------------------------------------------
// The check

export interface ChartRef {
  /** What helm.v4.Chart gets as `chart`: an oci:// reference, a chart name (with `repository`), or a path. */
  chart: string;
  /** Chart version; undefined for a local path (its Chart.yaml says). */
  version?: string;
  /** http(s) chart repository URL (helm.v4.Chart `repositoryOpts.repo`). */
  repository?: string;
  /** Local chart directory. */
  path?: string;
}

export interface ResolvedArgs {
  namespace: string;
  createNamespace: boolean;
  releaseName: string;
  chart: ChartRef;
  mode: DeploymentMode;
  /** Exactly what the chart receives: typed fields merged over `values`. */
  values: Values;
  /** The chart version's defaults coalesced with `values` (Helm rules), for the typed keys and the rest. */
  effective: ChartValues;
  /** Job mode: which dispatcher the hook Jobs run. */
  dispatcherImplementation: DispatcherImplementation;
  rerunToken?: string;
  /** `rollout.*` with every default applied. */
  rollout: RolloutSettings;
  /** Whether a `kubeconfig` argument was given (its text is never kept here). */
  kubeconfigGiven: boolean;
}

export interface CheckResult {
  errors: ArgIssue[];
  warnings: ArgIssue[];
  /** Set when there is no error and every value is known. */
  resolved?: ResolvedArgs;
}

/** The typed chart fields of `args` as a values tree (at their chart paths). */
function typedChartValues(args: Values): Values {
  const typed: Values = {};
  for (const key of CHART_KEYS) if (args[key] !== undefined) typed[key] = stripUndefined(args[key]);
  for (const [arg, path] of Object.entries(RENAMED)) {
    if (args[arg] === undefined) continue;
    const [parent, leaf] = path;
    const current = typed[parent];
    if (current === UNKNOWN) continue;
    typed[parent] = { ...(isPlainObject(current) ? current : {}), [leaf]: args[arg] };
  }
  return typed;
}

function chartRef(chart: ComponentArgs["chart"]): ChartRef {
  const path = chart?.path;
  if (path !== undefined) return { chart: path, path };
  const version = chart?.version ?? CHART_VERSION;
  const repository = chart?.repository?.replace(/\/+$/, "");
  if (repository === undefined) return { chart: CHART_REFERENCE, version };
  if (repository.startsWith("oci://")) {
    // A reference that already names the chart is taken as is.
    const ref = repository.endsWith(`/${CHART_NAME}`) ? repository : `${repository}/${CHART_NAME}`;
    return { chart: ref, version };
  }
  return { chart: CHART_NAME, version, repository };
}

function isNonEmptyList(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}
function isNonEmptyMap(v: unknown): boolean {
  return isPlainObject(v) && Object.keys(v).length > 0;
}

/**
 * Check KataDeploy's arguments. `args` may hold UNKNOWN anywhere (not known yet); those parts are skipped.
 * `resourceName` gives the default release name.
 */
export function checkArgs(args: unknown, resourceName: string): CheckResult {
  const errors: ArgIssue[] = [];
  const warnings: ArgIssue[] = [];
  const a: Values = args === undefined || args === null ? {} : (args as Values);
  if (!isPlainObject(a)) {
    return {
      errors: [{ path: "(args)", message: `expected a map of arguments, got ${describe(args)}` }],
      warnings,
    };
  }

  // 1. The arguments' own shape (unknown names, component fields).
  const shape = argsShape.safeParse(a, { error: zodMessage });
  for (const iss of shape.success ? [] : shape.error.issues) {
    if (touchesUnknown(a, iss.path)) continue;
    if (iss.code === "unrecognized_keys") {
      // Inside a component argument (e.g. rollout.*), name that argument's own fields.
      const nested = iss.path.length > 0 ? validatedFieldNames(iss.path) : undefined;
      for (const key of iss.keys) {
        const hint = closest(key, nested ?? ARG_NAMES);
        errors.push({
          path: formatPath([...iss.path, key]),
          message: nested
            ? `unknown field${hint ? ` (did you mean ${hint}?)` : ""}; valid fields: ${nested.join(", ")}`
            : `unknown argument${hint ? ` (did you mean ${hint}?)` : ""}; valid arguments: ${ARG_NAMES.join(", ")}. Other chart values go under values`,
        });
      }
    } else errors.push({ path: formatPath(iss.path), message: iss.message });
  }

  // 2. Effective values: typed fields over `values`.
  const typed = typedChartValues(a);
  const rawValues = a.values;
  const valuesArg: Values | Unknown =
    rawValues === UNKNOWN ? UNKNOWN : isPlainObject(rawValues) ? rawValues : {};
  const conflicts: PropertyKey[][] = [];
  const user: Values | Unknown =
    valuesArg === UNKNOWN ? UNKNOWN : overlayValues(stripUndefined(valuesArg) as Values, typed, conflicts);
  const fromTyped = (path: readonly PropertyKey[]): boolean => {
    let node: unknown = typed;
    for (const seg of path) {
      // Lists and scalars are replaced wholesale by the typed side, so everything below them is typed.
      if (node === UNKNOWN || node === null || typeof node !== "object" || Array.isArray(node)) return true;
      const next = (node as Record<PropertyKey, unknown>)[seg];
      if (next === undefined) return false;
      node = next;
    }
    return true;
  };
  const userPath = (path: readonly PropertyKey[]): string => {
    if (!fromTyped(path)) return formatPath(["values", ...path]);
    for (const [arg, renamed] of Object.entries(RENAMED)) {
      if (renamed.every((seg, i) => path[i] === seg)) return formatPath([arg, ...path.slice(renamed.length)]);
    }
    return formatPath(path);
  };
  for (const c of conflicts) {
    warnings.push({
      path: formatPath(["values", ...c]),
      message: `overridden by the typed field ${userPath(c)} (typed fields win over values); remove one of them`,
    });
  }

  const chartArg = isPlainObject(a.chart) ? a.chart : undefined;
  // The typed checks and defaults follow the requested chart version when there is a renderer for it.
  const version: ChartVersion = isChartVersion(chartArg?.version) ? chartArg.version : CHART_VERSION;
  if (user !== UNKNOWN) {
    const schema = valuesSchemaFor(version);
    const parsed = schema.safeParse(user, { error: zodMessage });
    for (const iss of parsed.success ? [] : parsed.error.issues) {
      if (touchesUnknown(user, iss.path)) continue;
      if (iss.code === "unrecognized_keys") {
        const known = knownKeysAt(schema, iss.path);
        for (const key of iss.keys) {
          const path = [...iss.path, key];
          if (atLeast41(version) && REMOVED_IN_41.has(path.map(String).join("."))) continue;
          const hint = closest(key, known);
          const where = formatPath(path);
          if (fromTyped(path)) {
            errors.push({
              path: userPath(path),
              message: `unknown field${hint ? ` (did you mean ${hint}?)` : ""}; valid fields here: ${known.join(", ")}`,
            });
          } else {
            warnings.push({
              path: userPath(path),
              message: `chart ${version} has no value ${where}${hint ? ` (did you mean ${hint}?)` : ""}; it is passed to the chart as is and ${version} ignores it`,
            });
          }
        }
      } else errors.push({ path: userPath(iss.path), message: iss.message });
    }
    // Top-level keys of `values` that chart 4.0.0 does not have are ignored by it: say so.
    const chartRootKeys = [...Object.keys(chartDefaults(version)), "nameOverride", "fullnameOverride"];
    for (const key of Object.keys(user)) {
      if (chartRootKeys.includes(key) || fromTyped([key])) continue;
      const hint = closest(key, chartRootKeys);
      warnings.push({
        path: userPath([key]),
        message: `chart ${version} has no value ${key}${hint ? ` (did you mean ${hint}?)` : ""}; it is passed to the chart as is and ${version} ignores it`,
      });
    }
    crossFieldRules(user, userPath, errors, warnings, version);
    if (a.dispatcherImplementation === DispatcherImplementation.Upstream) {
      imagePairRule(user, userPath, errors, version);
    }
  }

  // 3. Component-level rules, on the fields as parsed (defaults applied) where they are valid.
  const field = <K extends keyof typeof COMPONENT_FIELDS>(key: K): ComponentArgs[K] | undefined => {
    const parsed = COMPONENT_FIELDS[key].safeParse(a[key]);
    return parsed.success ? (parsed.data as ComponentArgs[K]) : undefined;
  };
  const namespace = field("namespace");
  if (a.createNamespace === true && (namespace === "kube-system" || namespace === "default")) {
    errors.push({
      path: "createNamespace",
      message: `namespace "${namespace}" exists in every cluster and cannot be created; set createNamespace: false, or choose another namespace`,
    });
  }
  if (a.releaseName === undefined) {
    const problems = helmReleaseNameErrors(resourceName);
    if (problems.length > 0) {
      errors.push({
        path: "releaseName",
        message: `the default release name (the resource name "${resourceName}") is not a valid Helm release name: ${problems.join("; ")}; set releaseName`,
      });
    }
  }
  const chart = isPlainObject(a.chart) ? a.chart : undefined;
  if (chart?.version !== undefined && chart.version !== UNKNOWN && !isChartVersion(chart.version)) {
    warnings.push({
      path: "chart.version",
      message: `the typed fields and checks follow chart ${CHART_VERSION} (checked versions: ${CHART_VERSIONS.join(", ")}); with ${String(chart.version)} keys that chart changed are passed as given`,
    });
  }

  if (errors.length > 0 || containsUnknown(a) || !shape.success || user === UNKNOWN)
    return { errors, warnings };
  // Without errors and unknowns the parse succeeded: its output is the typed, defaulted component args.
  const parsed = shape.data;
  // The chart's values stay the user's tree as given (the chart applies its own defaults); `effective` is that
  // tree coalesced over the chart version's defaults, as Helm would.
  const effective = coalesceValues(chartDefaults(version), user);
  return {
    errors,
    warnings,
    resolved: {
      namespace: parsed.namespace,
      createNamespace: parsed.createNamespace,
      releaseName: parsed.releaseName ?? resourceName,
      chart: chartRef(parsed.chart),
      mode: z.enum(DeploymentMode).parse(effective.deploymentMode),
      values: user,
      effective,
      dispatcherImplementation: parsed.dispatcherImplementation,
      rerunToken: parsed.rerunToken,
      rollout: parsed.rollout,
      kubeconfigGiven: parsed.kubeconfig !== undefined,
    },
  };
}

/**
 * Chart 4.1.0's refusals, where its render would `fail`: the removed job-mode selection keys (any mode, even
 * empty; the chart's migration hint), and a per-node Job ttl under 60 s in job mode.
 */
function chartVersionRules41(
  user: Values,
  userPath: (path: readonly PropertyKey[]) => string,
  errors: ArgIssue[],
  warnings: ArgIssue[],
  mode: unknown,
): void {
  for (const e of removedJobSelectionKeyErrors(user)) {
    errors.push({ path: userPath(e.path.split(".")), message: `${e.message} (chart 4.1.0)` });
  }
  if (mode === DeploymentMode.Job) {
    warnings.push({
      path: "chart.version",
      message:
        "chart 4.1.0's objects are deployed and checked, but the rollout still runs the install and cleanup dispatchers with chart 4.0.0's flags (the bundled dispatcher lacks 4.1.0's node labelling, claim and handler checks); nodes get no katacontainers.io/kata-runtime label from it",
    });
  }
  const jobValues = user.job;
  const ttl = isPlainObject(jobValues) ? jobValues.ttlSecondsAfterFinished : undefined;
  if (mode === DeploymentMode.Job && typeof ttl === "number" && ttl < 60) {
    errors.push({
      path: userPath(["job", "ttlSecondsAfterFinished"]),
      message: `${ttl} is too short: chart 4.1.0 refuses less than 60 s, because a per-node Job deleted before the dispatcher reads it counts as failed; use 60 or more`,
    });
  }
}

/**
 * The chart's dispatcher image and kata-deploy image travel as a pair per chart version: the dispatcher injects
 * the node identity the install checks, under `KATA_DEPLOY_NODE_MACHINE_ID` up to 4.1.0 and `NODE_MACHINE_ID`
 * from 4.2.0, and a missing variable reads as "older chart, nothing to compare" (chart-versions.md §1.2). So in
 * job mode with the chart's own dispatcher, overriding one image without the other is refused; overriding both
 * is the user's informed choice.
 */
function imagePairRule(
  user: Values,
  userPath: (path: readonly PropertyKey[]) => string,
  errors: ArgIssue[],
  version: ChartVersion,
): void {
  if ((user.deploymentMode ?? DeploymentMode.Daemonset) !== DeploymentMode.Job) return;
  const overridden = (v: unknown) =>
    isPlainObject(v) && (isNonEmptyValue(v.reference) || isNonEmptyValue(v.tag));
  const kata = overridden(user.image);
  const dispatcher = isPlainObject(user.job) && overridden(user.job.dispatcherImage);
  if (kata === dispatcher) return;
  const [given, missing] = kata ? [["image"], "job.dispatcherImage"] : [["job", "dispatcherImage"], "image"];
  errors.push({
    path: userPath(given),
    message: `the kata-deploy image and the dispatcher image travel as a pair per chart version (chart ${version} pairs both with tag ${version}): the dispatcher hands the install the node identity it checks, and a mixed pair silently disables that check. Set ${missing} to the same release too, or neither`,
  });
}

function isNonEmptyValue(v: unknown): boolean {
  return v !== undefined && v !== null && v !== "";
}

/** The shims that end up enabled (chart defaults, then the user's shims) with their arches, or UNKNOWN. */
function enabledShims(user: Values): Map<string, readonly string[]> | Unknown {
  if (containsUnknown(user.shims)) return UNKNOWN;
  try {
    const effective: ChartValues = coalesceValues(chartDefaults(), { shims: user.shims ?? {} });
    const enabled = new Map<string, readonly string[]>();
    for (const { name, config } of chartEnabledShims(effective)) {
      enabled.set(name, Array.isArray(config.supportedArches) ? config.supportedArches : []);
    }
    return enabled;
  } catch {
    // An ill-typed shim entry is already reported by the schema; derived checks wait for a fix.
    return UNKNOWN;
  }
}

function crossFieldRules(
  user: Values,
  userPath: (path: readonly PropertyKey[]) => string,
  errors: ArgIssue[],
  warnings: ArgIssue[],
  version: ChartVersion,
): void {
  const mode = user.deploymentMode ?? DeploymentMode.Daemonset;
  const jobValues = user.job;
  if (atLeast41(version)) {
    chartVersionRules41(user, userPath, errors, warnings, mode);
  }

  // job.* only matters in job mode; in daemonset mode it is kept in the release but unused.
  if (mode === DeploymentMode.Daemonset && isPlainObject(jobValues)) {
    for (const key of Object.keys(jobValues)) {
      warnings.push({
        path: userPath(["job", key]),
        message:
          "is set but deploymentMode is daemonset: job.* is used only in job mode (set deploymentMode: job, or remove it)",
      });
    }
  }
  if (!atLeast41(version) && mode === DeploymentMode.Job && isNonEmptyMap(user.nodeSelector)) {
    warnings.push({
      path: userPath(["nodeSelector"]),
      message: `chart ${CHART_VERSION} ignores nodeSelector in job mode; select the nodes with job.nodes, job.nodeSelector or job.nodeSelectorExpressions`,
    });
  }

  // Explicit nodes make the chart drop every selector silently: reject the combination rather than guess.
  const exclusive = (base: PropertyKey[], block: unknown) => {
    if (!isPlainObject(block) || !isNonEmptyList(block.nodes)) return;
    const selectors = ["nodeSelector", "nodeSelectorExpressions"].filter((k) =>
      k === "nodeSelector" ? isNonEmptyMap(block[k]) : isNonEmptyList(block[k]),
    );
    if (selectors.length === 0) return;
    const prefix = base.map(String).join(".");
    errors.push({
      path: userPath([...base, "nodes"]),
      message: `cannot be combined with ${selectors.map((s) => `${prefix}.${s}`).join(" and ")}: the chart then ignores the selectors and uses exactly the listed nodes. Keep either the node list or the selectors`,
    });
  };
  exclusive(["job"], jobValues);
  if (isPlainObject(jobValues)) exclusive(["job", "cleanup"], jobValues.cleanup);

  if (!atLeast41(version) && mode === DeploymentMode.Job && isPlainObject(jobValues)) {
    const ttl = jobValues.ttlSecondsAfterFinished;
    if (typeof ttl === "number" && ttl >= 0 && ttl < 60) {
      warnings.push({
        path: userPath(["job", "ttlSecondsAfterFinished"]),
        message: `${ttl} s may remove finished per-node Jobs before their outcome is read; use 60 or more`,
      });
    }
  }

  // A multi-install suffix flows into object names, labels and RuntimeClass handlers.
  const env = user.env;
  const suffix = isPlainObject(env) ? env.multiInstallSuffix : undefined;
  const shimsOn = enabledShims(user);
  if (typeof suffix === "string" && suffix !== "") {
    const suffixPath = userPath(["env", "multiInstallSuffix"]);
    const own = dns1123LabelErrors(suffix);
    if (own.length > 0) {
      errors.push({
        path: suffixPath,
        message: `"${suffix}" is appended to object names, RuntimeClass handlers and the kata-deploy/instance label, so it must be a lowercase RFC 1123 label: ${own.join("; ")}`,
      });
    } else {
      const names = chartNames(suffix);
      const base = names.base;
      // The DaemonSet (daemonset mode only) labels its pods name=<base>.
      if (mode === DeploymentMode.Daemonset && labelValueErrors(base).length > 0) {
        errors.push({
          path: suffixPath,
          message: `makes the DaemonSet pod label name=${base} ${base.length} characters, over 63; use at most ${63 - base.length + suffix.length} characters`,
        });
      }
      for (const [what, name] of Object.entries(names)) {
        if (what.endsWith("NamePrefix")) continue;
        const problems = dns1123SubdomainErrors(name);
        if (problems.length > 0)
          errors.push({
            path: suffixPath,
            message: `makes ${what} "${name}" invalid: ${problems.join("; ")}`,
          });
      }
      if (shimsOn !== UNKNOWN) {
        const tooLong = [...shimsOn.keys()]
          .map((shim) => ({ shim, handler: runtimeClassName(shim, suffix) }))
          .filter(({ handler }) => dns1123LabelErrors(handler).length > 0);
        if (tooLong.length > 0) {
          const longest = tooLong.reduce((x, y) => (y.handler.length > x.handler.length ? y : x));
          const max = 63 - (longest.handler.length - suffix.length);
          const shown = tooLong.slice(0, 3).map((t) => t.handler);
          if (tooLong.length > 3) shown.push(`${tooLong.length - 3} more`);
          errors.push({
            path: suffixPath,
            message: `makes the RuntimeClass handler${tooLong.length > 1 ? "s" : ""} ${shown.join(", ")} longer than 63 characters (a handler is a DNS-1123 label); use at most ${Math.max(max, 0)} characters, or disable ${tooLong.length > 1 ? "those shims" : `shim ${longest.shim}`}`,
          });
        }
      }
    }
  }

  // A default shim that is off (or lacks the arch) gives that arch no default, which the chart does silently.
  // Warn when the arch is served by some enabled shim, or when the user chose that default explicitly.
  if (shimsOn !== UNKNOWN && user.defaultShim !== UNKNOWN) {
    const given = isPlainObject(user.defaultShim) ? user.defaultShim : {};
    for (const arch of ARCHES) {
      const explicit = given[arch] !== undefined;
      const shim = given[arch] ?? chartDefaults().defaultShim?.[arch];
      if (typeof shim !== "string" || shim === "") continue;
      const candidates = [...shimsOn].filter(([, arches]) => arches.includes(arch)).map(([n]) => n);
      if (candidates.includes(shim) || (!explicit && candidates.length === 0)) continue;
      const why = shimsOn.has(shim)
        ? `shim "${shim}" does not list ${arch} in supportedArches`
        : `"${shim}" is not an enabled shim`;
      warnings.push({
        path: explicit ? userPath(["defaultShim", arch]) : `defaultShim.${arch}`,
        message: `${why}, so ${arch} nodes get no default shim; ${candidates.length > 0 ? `choose one of: ${candidates.join(", ")}` : `no enabled shim supports ${arch}`}`,
      });
    }
  }
}
