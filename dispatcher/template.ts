// The per-node Job template: read and checked once, then cloned per node (dispatcher-reference.md §2.6).
import { parse } from "yaml";
import { jobTrackingKeys } from "../kube/jobStatus";
import { NODE_FACT_ENV, type NodeFacts } from "../kube/nodeLabels";
import type { Toleration } from "../kube/tolerations";
import { nodeLabelValue } from "./naming";

/** A Job as plain JSON. Only the fields the dispatcher sets or reads are typed; the rest is carried as-is. */
export interface JobManifest {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    [key: string]: unknown;
  };
  spec?: {
    template?: {
      metadata?: { labels?: Record<string, string>; [key: string]: unknown };
      spec?: {
        nodeName?: string;
        tolerations?: Toleration[];
        containers?: unknown[];
        [key: string]: unknown;
      };
    };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export class TemplateError extends Error {
  override readonly name = "TemplateError";
}

/** Parse and check a Job template's text; `source` names the file in errors. */
export function parseJobTemplate(text: string, source: string): JobManifest {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new TemplateError(`${source}: not valid YAML (${(err as Error).message.split("\n")[0]})`);
  }
  const problems: string[] = [];
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new TemplateError(
      `${source}: expected one batch/v1 Job object (a YAML mapping), found ${doc === null ? "nothing" : typeof doc}`,
    );
  }
  const job = doc as JobManifest;
  if (job.apiVersion !== "batch/v1")
    problems.push(`apiVersion must be "batch/v1" (found ${JSON.stringify(job.apiVersion)})`);
  if (job.kind !== "Job") problems.push(`kind must be "Job" (found ${JSON.stringify(job.kind)})`);
  const podSpec = job.spec?.template?.spec;
  if (!podSpec || typeof podSpec !== "object")
    problems.push("spec.template.spec is required (the pod to run on each node)");
  else if (!Array.isArray(podSpec.containers) || podSpec.containers.length === 0) {
    problems.push("spec.template.spec.containers must list at least one container");
  }
  const tolerations = podSpec?.tolerations;
  if (tolerations !== undefined && tolerations !== null && !Array.isArray(tolerations)) {
    problems.push("spec.template.spec.tolerations must be a list");
  }
  if (problems.length > 0) throw new TemplateError(`${source}: invalid Job template: ${problems.join("; ")}`);
  return job;
}

/** The template's pod tolerations (the DaemonSet's automatic ones are added by the admission check). */
export function templateTolerations(template: JobManifest): Toleration[] {
  return [...(template.spec?.template?.spec?.tolerations ?? [])];
}

export interface InstanceParams {
  jobName: string;
  node: string;
  ownerValue: string;
  namespace: string;
  owner?: OwnerReference;
  /** `--tracking-label-prefix` of the owner/node labels and the node-name annotation; default kata-deploy's. */
  trackingPrefix?: string;
  /** The node's runtime version and machine ID, handed to every container that does not set them (§2.6). */
  facts?: NodeFacts;
}

/**
 * One node's Job: a deep clone of the template with its name, owner/node labels, node-name annotation, owner label
 * on the pod template, `nodeName`, namespace and (with an owner) the single non-controller ownerReference.
 */
export function instantiateJob(template: JobManifest, params: InstanceParams): JobManifest {
  const job = structuredClone(template);
  const keys = jobTrackingKeys(params.trackingPrefix);
  const metadata = (job.metadata ??= {});
  metadata.name = params.jobName;
  delete metadata.generateName;
  // The POST goes to the dispatcher's namespace; a different one in the template would be rejected by the server.
  metadata.namespace = params.namespace;
  metadata.labels = {
    ...(metadata.labels ?? {}),
    [keys.owner]: params.ownerValue,
    [keys.node]: nodeLabelValue(params.node),
  };
  metadata.annotations = { ...(metadata.annotations ?? {}), [keys.nodeName]: params.node };
  if (params.owner) {
    metadata.ownerReferences = [{ ...params.owner, controller: false, blockOwnerDeletion: false }];
  }
  // Server-assigned fields a template copied from a live object may carry would break the create.
  for (const key of ["uid", "resourceVersion", "creationTimestamp", "selfLink", "managedFields"])
    delete metadata[key];
  delete job.status;
  const spec = (job.spec ??= {});
  const podTemplate = (spec.template ??= {});
  const podMetadata = (podTemplate.metadata ??= {});
  podMetadata.labels = { ...(podMetadata.labels ?? {}), [keys.owner]: params.ownerValue };
  const podSpec = (podTemplate.spec ??= {});
  podSpec.nodeName = params.node;
  injectNodeFacts(podSpec, params.facts ?? {});
  return job;
}

type EnvContainer = { env?: { name: string; value?: string }[] };

/** Append each known fact to every init and main container's env unless the template already sets that name. */
function injectNodeFacts(
  podSpec: { containers?: unknown[]; [key: string]: unknown },
  facts: NodeFacts,
): void {
  const vars: [string, string | undefined][] = [
    [NODE_FACT_ENV.runtimeVersion, facts.containerRuntimeVersion],
    ...NODE_FACT_ENV.machineId.map((name): [string, string | undefined] => [name, facts.machineID]),
  ];
  const known = vars.filter((v): v is [string, string] => Boolean(v[1]));
  if (known.length === 0) return;
  const containers = [
    ...((podSpec.initContainers as EnvContainer[] | undefined) ?? []),
    ...((podSpec.containers as EnvContainer[] | undefined) ?? []),
  ];
  for (const container of containers) {
    const env = (container.env ??= []);
    for (const [name, value] of known) if (!env.some((e) => e.name === name)) env.push({ name, value });
  }
}
