// The KataDeploy component: validates its arguments (eagerly for plain values, before anything is
// registered; inside `apply` for outputs, before they reach any resource input), then deploys the
// kata-deploy chart with helm.v4.Chart under itself, honouring the caller's provider(s), and runs the chart's
// hooks (which helm.v4.Chart drops) with the KataRollout dynamic resource (rollout/), which waits for the result.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { buildDispatcherBundle, type DispatcherBundle } from "../dispatcher/bundle";
import { ambientReference, newRollout, resolveConnection, type RolloutInputs } from "../rollout";
import { recogniseKubeconfigArgument } from "../rollout/resolveConnection";
import { withInstallPlan } from "../rollout/installPlan";
import {
  DeploymentMode,
  DispatcherImplementation,
  KataDeployArgs,
  NodeOutcomesOutput,
  RolloutSummaryOutput,
} from "./args";
import type { BindingLike, K8sObject, RoleLike } from "../chart/k8s";
import { readLocalChartVersion } from "./localChart";
import { Plan, planFromResolved } from "./plan";
import { assemble, rolloutInputsOf } from "./assemble";
import { helmRender } from "./helmTemplate";
import {
  ArgIssue,
  COMPONENT_DEFAULTS,
  CheckResult,
  KataDeployArgsError,
  UNKNOWN,
  checkArgs,
  isPlainObject,
} from "./validation";

export const KATA_DEPLOY_TYPE = "kata-deploy:index:KataDeploy";

/** The args with every Output or Promise replaced by UNKNOWN (what can be checked right now). */
export function knownParts(value: unknown): unknown {
  if (pulumi.Output.isInstance(value)) return UNKNOWN;
  if (value instanceof Promise || (typeof value === "object" && value !== null && "then" in value))
    return UNKNOWN;
  if (Array.isArray(value)) return value.map(knownParts);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = knownParts(v);
    return out;
  }
  return value;
}

interface Planned {
  plan: Plan;
  chartVersion: string;
}

/** The plan of a finished check; throws KataDeployArgsError with every problem. */
function planChecked(name: string, checked: CheckResult): Planned {
  if (checked.errors.length > 0) throw new KataDeployArgsError(checked.errors, `KataDeploy "${name}"`);
  if (!checked.resolved) throw new Error(`KataDeploy "${name}": arguments are not fully known`);
  const plan = planFromResolved(checked.resolved, checked.warnings);
  let chartVersion = plan.chart.version;
  if (chartVersion === undefined) {
    try {
      chartVersion = readLocalChartVersion(plan.chart.path as string);
    } catch (e) {
      if (e instanceof KataDeployArgsError) throw new KataDeployArgsError(e.issues, `KataDeploy "${name}"`);
      throw e;
    }
  }
  return { plan, chartVersion };
}

/** The metadata of a rendered object, as a Pulumi Kubernetes input. */
function metadataOf(object: pulumi.Output<K8sObject>): pulumi.Output<k8s.types.input.meta.v1.ObjectMeta> {
  return object.apply((o) => o.metadata as k8s.types.input.meta.v1.ObjectMeta);
}

/** A Role's or ClusterRole's arguments (the two share every field but `kind`, which the resource sets). */
function roleArgs(role: pulumi.Output<RoleLike>): Omit<k8s.rbac.v1.RoleArgs, "kind"> {
  return { metadata: metadataOf(role), rules: role.apply((r) => r.rules) };
}

function bindingArgs(binding: pulumi.Output<BindingLike>): Omit<k8s.rbac.v1.RoleBindingArgs, "kind"> {
  return {
    metadata: metadataOf(binding),
    roleRef: binding.apply((b) => b.roleRef),
    subjects: binding.apply((b) => b.subjects),
  };
}

/**
 * The deployment mode when the program runs: the typed field, else `values.deploymentMode`, else the chart's
 * default; undefined when an Output decides it.
 */
function knownMode(known: Record<string, unknown>): DeploymentMode | undefined {
  const typed = known.deploymentMode;
  if (typed === UNKNOWN) return undefined;
  if (typeof typed === "string") return typed as DeploymentMode;
  const values = known.values;
  if (values === UNKNOWN) return undefined;
  const fromValues = isPlainObject(values) ? values.deploymentMode : undefined;
  if (fromValues === UNKNOWN) return undefined;
  return typeof fromValues === "string" ? (fromValues as DeploymentMode) : DeploymentMode.Daemonset;
}

/** The Kubernetes provider the caller chose: `opts.provider`, `opts.providers`, or one inherited from the parent. */
export function callerKubernetesProvider(
  opts: pulumi.ComponentResourceOptions | undefined,
): pulumi.ProviderResource | undefined {
  const packageOf = (p: pulumi.ProviderResource) => (p as unknown as { getPackage(): string }).getPackage();
  if (opts?.provider && packageOf(opts.provider) === "kubernetes") return opts.provider;
  const providers = opts?.providers;
  if (Array.isArray(providers)) {
    const found = providers.find((p) => packageOf(p) === "kubernetes");
    if (found) return found;
  } else if (providers?.kubernetes) return providers.kubernetes;
  return opts?.parent?.getProvider("kubernetes:core/v1:Namespace");
}

/** Why a caller's provider without the `kubeconfig` argument is refused (components/README.md, Connection). */
export const PROVIDER_NEEDS_KUBECONFIG =
  "required with an explicit Kubernetes provider (opts.provider, opts.providers, or one inherited from the " +
  "parent): the component cannot read a provider's kubeconfig, and the rollout must reach the cluster the chart " +
  "goes to. Pass that provider's kubeconfig as the kubeconfig argument too, or pass only the kubeconfig argument " +
  "(the component then creates the Kubernetes provider from it)";

/** What the component's own Kubernetes provider gets: the document itself, or the path (read by the provider). */
function providerKubeconfig(argument: string): string {
  const recognised = recogniseKubeconfigArgument(argument);
  return recognised.kind === "file"
    ? recognised.path
    : recognised.kind === "unrecognised"
      ? argument
      : recognised.text;
}

/**
 * Kata Containers on a Kubernetes cluster through the kata-deploy Helm chart (4.0.0 by default), in
 * daemonset mode or job mode. Arguments mirror the chart's values; see components/README.md.
 */
export class KataDeploy extends pulumi.ComponentResource {
  /** The deployment mode in effect (`deploymentMode`, default daemonset). */
  public readonly mode: pulumi.Output<DeploymentMode>;
  /** Namespace of the release. */
  public readonly namespace: pulumi.Output<string>;
  /** Helm release name. */
  public readonly releaseName: pulumi.Output<string>;
  /** Version of the deployed chart (from Chart.yaml for a local chart). */
  public readonly chartVersion: pulumi.Output<string>;
  /** Per node of the last install run: outcome, failure reason and message (read one with `nodeOutcome`). */
  public readonly nodeOutcomes: pulumi.Output<NodeOutcomesOutput>;
  /** Counts of the last install run. */
  public readonly summary: pulumi.Output<RolloutSummaryOutput>;
  /** Sorted names of the nodes where Kata is installed (the install succeeded). */
  public readonly kataNodes: pulumi.Output<string[]>;
  /** Identifier of the last install run (`<UTC time>-<run key prefix>`), also annotated on the dispatcher Job. */
  public readonly runId: pulumi.Output<string>;

  constructor(name: string, args: KataDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    // The kubeconfig is checked apart from the rest: an Output there (usually a secret) must neither hold
    // back the plan nor make every chart value secret.
    const { kubeconfig: kubeconfigArg, ...rest } = args ?? {};
    const known = knownParts(rest) as Record<string, unknown>;
    const knownKubeconfig = knownParts(kubeconfigArg);
    // Plain values are checked before super(): an invalid argument registers nothing at all.
    const eager = checkArgs(
      knownKubeconfig === UNKNOWN ? known : { ...known, kubeconfig: knownKubeconfig },
      name,
    );
    const createNamespace = rest.createNamespace;
    if (createNamespace !== undefined && typeof createNamespace !== "boolean") {
      eager.errors.push({
        path: "createNamespace",
        message:
          "must be a plain true or false (not an output): it decides whether a Namespace resource exists, which Pulumi must know when the program runs",
      });
    }
    const implementation = rest.dispatcherImplementation ?? COMPONENT_DEFAULTS.dispatcherImplementation;
    if (pulumi.Output.isInstance(implementation) || (implementation as unknown) instanceof Promise) {
      eager.errors.push({
        path: "dispatcherImplementation",
        message:
          'must be a plain "bundled" or "upstream" (not an output): it decides whether the dispatcher script ConfigMap exists',
      });
    }
    // One cluster, by construction: the chart and the rollout must reach the same cluster, and the component cannot
    // read a caller's provider, so that provider comes with its kubeconfig or not at all.
    const callerProvider = callerKubernetesProvider(opts);
    if (callerProvider && kubeconfigArg === undefined)
      eager.errors.push({ path: "kubeconfig", message: PROVIDER_NEEDS_KUBECONFIG });
    if (eager.errors.length > 0) throw new KataDeployArgsError(eager.errors, `KataDeploy "${name}"`);
    const warnOnce = (issues: ArgIssue[]) => {
      for (const i of issues) void pulumi.log.warn(`${i.path}: ${i.message}`, this);
    };
    const early = eager.resolved ? planChecked(name, eager) : undefined;

    // The engine stores a component's inputs: the kubeconfig goes there as a secret only.
    const kubeconfig = kubeconfigArg === undefined ? undefined : pulumi.secret(kubeconfigArg);
    super(KATA_DEPLOY_TYPE, name, { ...rest, ...(kubeconfig ? { kubeconfig } : {}) }, opts);

    // Outputs are checked once resolved; a failure rejects `planned`, so no resource input gets the bad
    // value. In preview, unknowns keep `apply` from running: nothing is checked and nothing fails.
    const fail = (e: unknown): never => {
      // A ResourceError is reported once, on this component, without a stack trace.
      if (e instanceof KataDeployArgsError) throw new pulumi.ResourceError(e.message, this, true);
      throw e;
    };
    let planned: pulumi.Output<Planned>;
    if (early) {
      warnOnce(early.plan.warnings);
      planned = pulumi.output(early);
    } else {
      planned = pulumi.output(rest).apply((resolved) => {
        try {
          const result = planChecked(name, checkArgs(resolved, name));
          warnOnce(result.plan.warnings);
          return result;
        } catch (e) {
          return fail(e);
        }
      });
    }
    const plan = planned.apply((p) => p.plan);

    // The kubeconfig argument without a provider of the caller's: the component's own provider, built from the very
    // kubeconfig the rollout connects with. Without either, the default provider and the rollout both use the
    // ambient kubeconfig (the stack's kubernetes:kubeconfig / kubernetes:context config, else $KUBECONFIG).
    const ownProvider =
      kubeconfig !== undefined && !callerProvider
        ? new k8s.Provider(
            name,
            { kubeconfig: pulumi.secret(pulumi.output(kubeconfig).apply(providerKubeconfig)) },
            { parent: this },
          )
        : undefined;
    const k8sOpts: pulumi.CustomResourceOptions = {
      parent: this,
      ...(ownProvider ? { provider: ownProvider } : {}),
    };

    let namespaceResource: k8s.core.v1.Namespace | undefined;
    if (createNamespace === true) {
      namespaceResource = new k8s.core.v1.Namespace(
        name,
        { metadata: { name: plan.apply((p) => p.args.namespace) } },
        k8sOpts,
      );
    }
    const namespace = namespaceResource
      ? namespaceResource.metadata.name
      : plan.apply((p) => p.args.namespace);

    // The chart's hooks on its near side (rollout/README.md, "Hooks around the chart"): created before the chart and
    // deleted after it. Registered below, once its inputs are built; the chart waits for it through this promise.
    let releaseHooksRegistered: (r: pulumi.Resource) => void = () => undefined;
    const releaseHooksDependency = new Promise<pulumi.Resource>(
      (resolve) => (releaseHooksRegistered = resolve),
    );

    const chart = new k8s.helm.v4.Chart(
      name,
      {
        chart: plan.apply((p) => p.chart.reference),
        version: plan.apply((p) => p.chart.version),
        repositoryOpts: plan.apply((p) => (p.chart.repository ? { repo: p.chart.repository } : undefined)),
        name: plan.apply((p) => p.args.releaseName),
        namespace,
        values: plan.apply((p) => p.values),
        // The provider would otherwise await every child, the DaemonSet's pods on all nodes (10 min): one stuck node
        // would fail the chart and the rollout, which reports each node, would never run (docs/spec/pulumi-facts.md,
        // "Await"). The rollout's own node-by-node wait decides success in both modes.
        skipAwait: true,
      },
      // Deleted before the release hooks' side, so its post-delete hooks run once the chart's objects are gone.
      { ...k8sOpts, dependsOn: [...(namespaceResource ? [namespaceResource] : []), releaseHooksDependency] },
    );

    // ---- The rollout: chart 4.0.0's hooks, run and waited for by KataRollout (rollout/README.md).
    const bundled = implementation === DispatcherImplementation.Bundled;
    const bundle: pulumi.Output<DispatcherBundle | undefined> = bundled
      ? pulumi.output(buildDispatcherBundle())
      : pulumi.output(undefined);
    // The release rendered once: the extras, the dispatcher Jobs and the rollout's inputs all come from it.
    const assembly = pulumi.all([plan, bundle]).apply(([p, b]) => {
      try {
        return assemble(p, { bundle: b, implementation, withExtras: true });
      } catch (e) {
        return fail(e);
      }
    });

    // Job mode: the script ConfigMap (bundled) and the dispatcher's extra Role/RoleBinding. Whether they exist
    // must be known now: when an Output decides the mode, they are created (harmless in daemonset mode).
    const extras: pulumi.Resource[] = [];
    const mode = knownMode(known);
    if (mode === undefined || mode === DeploymentMode.Job) {
      const objects = assembly.apply((a) => a.extras!);
      const childOpts = { ...k8sOpts, dependsOn: [chart] };
      if (bundled) {
        const configMap = objects.apply((o) => o.scriptConfigMap!);
        const recorder = objects.apply((o) => o.recorder!);
        const nodeRole = recorder.apply((r) => r.nodeRole);
        const eventsRole = recorder.apply((r) => r.eventsRole);
        extras.push(
          new k8s.core.v1.ConfigMap(
            `${name}-dispatcher-script`,
            { metadata: metadataOf(configMap), data: configMap.apply((c) => c.data) },
            childOpts,
          ),
          // What lets the dispatcher record each node's outcome and payload (chart/dispatcherJobs.ts).
          new k8s.rbac.v1.ClusterRole(`${name}-dispatcher-recorder`, roleArgs(nodeRole), childOpts),
          new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-dispatcher-recorder`,
            bindingArgs(recorder.apply((r) => r.nodeBinding)),
            childOpts,
          ),
          new k8s.rbac.v1.Role(`${name}-dispatcher-events`, roleArgs(eventsRole), childOpts),
          new k8s.rbac.v1.RoleBinding(
            `${name}-dispatcher-events`,
            bindingArgs(recorder.apply((r) => r.eventsBinding)),
            childOpts,
          ),
        );
      }
      extras.push(
        new k8s.rbac.v1.Role(
          `${name}-dispatcher-reader`,
          roleArgs(objects.apply((o) => o.podReaderRole)),
          childOpts,
        ),
        new k8s.rbac.v1.RoleBinding(
          `${name}-dispatcher-reader`,
          bindingArgs(objects.apply((o) => o.podReaderRoleBinding)),
          childOpts,
        ),
      );
    }

    // The rollout's connection reaches the cluster the chart objects go to: the kubeconfig argument (the caller's or
    // the component's own provider uses the same), else the default provider's: the stack's kubernetes:kubeconfig and
    // kubernetes:context config, else the ambient kubeconfig. A kubeconfig the user passed is resolved now (files
    // read, exec plugins kept as commands) and is secret; an ambient one becomes a reference without credentials,
    // re-read by the provider at each use (rollout/ambient.ts), so the state holds no credential the user did not
    // pass. KataRollout marks its `connection` input secret itself; it is unwrapped here only so that the other
    // rollout inputs (built in the same apply) do not become secret too.
    const defaultProviderConfig = new pulumi.Config("kubernetes");
    const context = kubeconfig === undefined ? defaultProviderConfig.get("context") : undefined;
    const passed = kubeconfig ?? defaultProviderConfig.getSecret("kubeconfig");
    const kubeconfigText = pulumi.output(passed).apply((kc) => {
      if (kc !== undefined) {
        const problems = checkArgs({ kubeconfig: kc }, name).errors;
        if (problems.length > 0) fail(new KataDeployArgsError(problems, `KataDeploy "${name}"`));
      }
      return kc;
    });
    const connection = pulumi.unsecret(
      kubeconfigText.apply((kc) => {
        try {
          const spec = resolveConnection({ kubeconfig: kc, context });
          return kc === undefined ? ambientReference(spec) : spec;
        } catch (e) {
          // The resolver's messages name the source and field, never the kubeconfig's content.
          throw new pulumi.ResourceError(
            `kubeconfig: ${(e as Error).message}; pass the kubeconfig argument or set $KUBECONFIG`,
            this,
            true,
          );
        }
      }),
    );
    // With the caller's provider the component cannot know that `kubeconfig` names its cluster, so the provider reads
    // the cluster's identity (kube-system's uid) and the rollout checks, before it changes anything, that its
    // connection reaches the same one.
    const clusterUid: pulumi.Output<string | undefined> =
      callerProvider && kubeconfig !== undefined
        ? k8s.core.v1.Namespace.get(`${name}-cluster-identity`, "kube-system", {
            parent: this,
            provider: callerProvider,
          }).metadata.uid
        : pulumi.output(undefined);
    // The hooks (and the release's objects a destroy waits for or keeps) come from real Helm: the chart rendered
    // through the kubernetes provider the chart itself uses.
    const helm = plan.apply((p) =>
      helmRender(
        { chart: p.chart, values: p.values, releaseName: p.args.releaseName, namespace: p.args.namespace },
        this,
        ownProvider,
      ),
    );
    const rolloutInputs: pulumi.Output<RolloutInputs> = pulumi
      .all([planned, assembly, connection, helm, clusterUid])
      .apply(async ([{ plan: p, chartVersion }, a, conn, h, uid]) => {
        const inputs: RolloutInputs = {
          ...rolloutInputsOf(p, a, conn, chartVersion, h),
          ...(uid ? { clusterUid: uid } : {}),
        };
        // Which nodes the next run installs and why, read from the nodes now (preview and up alike), so the preview
        // shows it as the `plan` input (rollout/installPlan.ts).
        const planned = await withInstallPlan(inputs, `KataDeploy "${name}"`);
        if (planned.report)
          void (planned.report.warning ? pulumi.log.warn : pulumi.log.info)(planned.report.line, this);
        return planned.inputs;
      });
    // Before the chart: pre-install/pre-upgrade hooks; after the chart's deletion: post-delete hooks, then the
    // objects the chart keeps (removed with the stack). The install plan is not its business.
    releaseHooksRegistered(
      newRollout(
        `${name}-release-hooks`,
        rolloutInputs.apply(({ plan: _plan, ...i }) => ({ ...i, chartSide: "before" as const })),
        { parent: this, dependsOn: namespaceResource ? [namespaceResource] : [] },
      ),
    );
    // Created after the chart and the extras (post-install), deleted before them (pre-delete: the cleanup runs
    // while the job-templates ConfigMap and the dispatcher RBAC still exist).
    // KataRollout (dynamic) in a TypeScript program; PackageRollout when the package's plugin constructs this.
    const rollout = newRollout(`${name}-rollout`, rolloutInputs, {
      parent: this,
      dependsOn: [chart, ...extras],
    });

    this.mode = plan.apply((p) => p.args.deploymentMode);
    this.namespace = namespace;
    this.releaseName = plan.apply((p) => p.args.releaseName);
    this.chartVersion = planned.apply((p) => p.chartVersion);
    this.nodeOutcomes = rollout.nodeOutcomes;
    this.summary = rollout.summary;
    this.kataNodes = rollout.kataNodes;
    this.runId = rollout.runId;
    this.registerOutputs({
      mode: this.mode,
      namespace: this.namespace,
      releaseName: this.releaseName,
      chartVersion: this.chartVersion,
      nodeOutcomes: this.nodeOutcomes,
      summary: this.summary,
      kataNodes: this.kataNodes,
      runId: this.runId,
    });
  }
}
