// The KataDeploy component: validates its arguments (eagerly for plain values, before anything is
// registered; inside `apply` for outputs, before they reach any resource input), then deploys the
// kata-deploy chart with helm.v4.Chart under itself, honouring the caller's provider(s).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { DeploymentMode, KataDeployArgs } from "./args";
import { readLocalChartVersion } from "./localChart";
import { Plan, planFromResolved } from "./plan";
import { ArgIssue, CheckResult, KataDeployArgsError, UNKNOWN, checkArgs, isPlainObject } from "./validation";

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

  constructor(name: string, args: KataDeployArgs, opts?: pulumi.ComponentResourceOptions) {
    // Plain values are checked before super(): an invalid argument registers nothing at all.
    const known = knownParts(args ?? {});
    const eager = checkArgs(known, name);
    const createNamespace = (args ?? {}).createNamespace;
    if (createNamespace !== undefined && typeof createNamespace !== "boolean") {
      eager.errors.push({
        path: "createNamespace",
        message:
          "must be a plain true or false (not an output): it decides whether a Namespace resource exists, which Pulumi must know when the program runs",
      });
    }
    if (eager.errors.length > 0) throw new KataDeployArgsError(eager.errors, `KataDeploy "${name}"`);
    const warnOnce = (issues: ArgIssue[]) => {
      for (const i of issues) void pulumi.log.warn(`${i.path}: ${i.message}`, this);
    };
    const early = eager.resolved ? planChecked(name, eager) : undefined;

    super(KATA_DEPLOY_TYPE, name, args, opts);

    // Outputs are checked once resolved; a failure rejects `planned`, so no resource input gets the bad
    // value. In preview, unknowns keep `apply` from running: nothing is checked and nothing fails.
    let planned: pulumi.Output<Planned>;
    if (early) {
      warnOnce(early.plan.warnings);
      planned = pulumi.output(early);
    } else {
      planned = pulumi.output(args).apply((resolved) => {
        try {
          const result = planChecked(name, checkArgs(resolved, name));
          warnOnce(result.plan.warnings);
          return result;
        } catch (e) {
          // A ResourceError is reported once, on this component, without a stack trace.
          if (e instanceof KataDeployArgsError) throw new pulumi.ResourceError(e.message, this, true);
          throw e;
        }
      });
    }
    const plan = planned.apply((p) => p.plan);

    let namespaceResource: k8s.core.v1.Namespace | undefined;
    if (createNamespace === true) {
      namespaceResource = new k8s.core.v1.Namespace(
        name,
        { metadata: { name: plan.apply((p) => p.args.namespace as string) } },
        { parent: this },
      );
    }
    const namespace = namespaceResource
      ? namespaceResource.metadata.name
      : plan.apply((p) => p.args.namespace as string);

    new k8s.helm.v4.Chart(
      name,
      {
        chart: plan.apply((p) => p.chart.reference),
        version: plan.apply((p) => p.chart.version),
        repositoryOpts: plan.apply((p) => (p.chart.repository ? { repo: p.chart.repository } : undefined)),
        name: plan.apply((p) => p.args.releaseName as string),
        namespace,
        values: plan.apply((p) => p.values),
      },
      { parent: this, dependsOn: namespaceResource ? [namespaceResource] : [] },
    );

    this.mode = plan.apply((p) => p.args.deploymentMode as DeploymentMode);
    this.namespace = namespace;
    this.releaseName = plan.apply((p) => p.args.releaseName as string);
    this.chartVersion = planned.apply((p) => p.chartVersion);
    this.registerOutputs({
      mode: this.mode,
      namespace: this.namespace,
      releaseName: this.releaseName,
      chartVersion: this.chartVersion,
    });
  }
}
