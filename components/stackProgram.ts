// The standalone program: reads KataDeploy's args from stack config (one config key per argument, e.g.
// `kata-deploy:deploymentMode`, `kata-deploy:job`), validates them with the component's own schema, and
// exports the component's outputs as stack outputs for StackReferences. `kata-deploy:kubeconfig` should be set
// with `pulumi config set --secret`; the component keeps it secret either way.
import * as pulumi from "@pulumi/pulumi";
import { NodeOutcomesOutput, RolloutSummaryOutput } from "./args";
import { KataDeploy } from "./kataDeploy";
import { DEFAULT_RESOURCE_NAME } from "./plan";
import {
  ARG_NAMES,
  ArgIssue,
  CHART_FIELDS,
  COMPONENT_FIELDS,
  KataDeployArgsError,
  checkArgs,
  unwrapSchema,
} from "./validation";

/** Arguments whose config value is taken as a raw string (everything else is JSON: maps, lists, numbers, booleans). */
const STRING_ARGS: ReadonlySet<string> = new Set(
  Object.entries({ ...COMPONENT_FIELDS, ...CHART_FIELDS })
    .filter(([, schema]) => {
      const type = unwrapSchema(schema)._zod.def.type;
      return type === "string" || type === "enum";
    })
    .map(([name]) => name),
);

/** The args in `config` (all stack config, `project:key` → text), or the problems with it. Pure. */
export function argsFromStackConfig(
  config: Readonly<Record<string, string>>,
  project: string,
): { args: Record<string, unknown>; errors: ArgIssue[] } {
  const args: Record<string, unknown> = {};
  const errors: ArgIssue[] = [];
  const prefix = `${project}:`;
  for (const [key, text] of Object.entries(config)) {
    if (!key.startsWith(prefix)) continue; // other namespaces (kubernetes:, pulumi:) are not ours
    const name = key.slice(prefix.length);
    if (!ARG_NAMES.includes(name)) {
      errors.push({
        path: key,
        message: `is not a KataDeploy argument; valid keys: ${ARG_NAMES.map((n) => prefix + n).join(", ")}`,
      });
      continue;
    }
    if (STRING_ARGS.has(name)) {
      args[name] = text;
      continue;
    }
    try {
      args[name] = JSON.parse(text);
    } catch {
      errors.push({
        path: key,
        message: `${JSON.stringify(text)} is not a ${name === "createNamespace" || name === "debug" || name === "disableAllShims" ? "boolean (true or false)" : "structured value"}; set it with \`pulumi config set --path ${prefix}${name}.<field> <value>\` or as YAML in the stack file`,
      });
    }
  }
  return { args, errors };
}

export interface StackOutputs {
  mode: pulumi.Output<string>;
  namespace: pulumi.Output<string>;
  releaseName: pulumi.Output<string>;
  chartVersion: pulumi.Output<string>;
  /** Per node of the last install run: outcome, reason, message (`nodeOutcome` reads one). */
  nodeOutcomes: pulumi.Output<NodeOutcomesOutput>;
  summary: pulumi.Output<RolloutSummaryOutput>;
  /** Nodes where Kata is installed: a downstream stack reads it with a StackReference. */
  kataNodes: pulumi.Output<string[]>;
  runId: pulumi.Output<string>;
}

/** The program: one KataDeploy from stack config; its outputs become the stack outputs. */
export function kataDeployStack(name: string = DEFAULT_RESOURCE_NAME): StackOutputs {
  const project = pulumi.getProject();
  const { args, errors } = argsFromStackConfig(pulumi.runtime.allConfig(), project);
  // The component's schema, with paths named as config keys.
  errors.push(...checkArgs(args, name).errors.map((i) => ({ ...i, path: `${project}:${i.path}` })));
  if (errors.length > 0) throw new KataDeployArgsError(errors, "stack config");
  const kata = new KataDeploy(name, args);
  return {
    mode: kata.mode,
    namespace: kata.namespace,
    releaseName: kata.releaseName,
    chartVersion: kata.chartVersion,
    nodeOutcomes: kata.nodeOutcomes,
    summary: kata.summary,
    kataNodes: kata.kataNodes,
    runId: kata.runId,
  };
}
