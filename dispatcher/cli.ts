// `kata-deploy dispatcher` command line: a thin layer over runDispatcher. Accepts every flag chart 4.0.0 passes to the
// upstream dispatcher (plus HEAD's selection flags and our own), prints progress and a summary on stderr/stdout,
// and exits 0 (all targeted nodes succeeded), 1 (a node failed, timeout, SIGTERM) or 2 (usage or setup error).
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { runCommand } from "../stdio/exit";
import { streamLogger, type LogFormat } from "./log";
import { writeResultsFile } from "./results";
import { runDispatcher, summarize, type DispatcherOptions, type ResultsDocument } from "./run";
import { PARALLELISM_DEFAULT, PARALLELISM_MIN } from "../chart/parallelism";
import { DISPATCHER_DEFAULTS } from "./defaults";
import { TRACKING_LABEL_PREFIX } from "../kube/jobStatus";
import {
  DEFAULT_INSTANCE_SUFFIX,
  INSTANCE_LABEL_PREFIX,
  parseTaintMatchers,
  PENDING_LABEL_VALUE,
  SHARED_NODE_LABEL_KEY,
  type TaintMatcher,
} from "../kube/nodeLabels";

export const DISPATCHER_VERSION = "0.1.0";

function atLeast(flag: string, integer: boolean, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(
        `${flag} takes a ${integer ? "whole " : ""}number >= ${min}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

const nonNegative = (flag: string, integer: boolean) => atLeast(flag, integer, 0);

/** `--nodes a,b`: names with blanks trimmed and empty entries dropped; no name at all is an error, not "all nodes". */
function nodeNames(value: string): string[] {
  const names = value
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0)
    throw new InvalidArgumentError(
      `no node name in ${JSON.stringify(value)}: give comma-separated node names, or leave --nodes out to select nodes by --node-selector`,
    );
  return names;
}

/** `--require-node-handlers a,b`: trimmed, empty entries dropped, at least one. */
function handlerNames(value: string): string[] {
  const names = [
    ...new Set(
      value
        .split(",")
        .map((n) => n.trim())
        .filter(Boolean),
    ),
  ];
  if (names.length === 0)
    throw new InvalidArgumentError(
      `no handler name in ${JSON.stringify(value)}: give comma-separated CRI handler names (e.g. kata-qemu,kata-clh)`,
    );
  return names;
}

/** `--remove-node-taints a,b:NoSchedule`: at least one matcher. */
function taintMatchers(value: string): TaintMatcher[] {
  const matchers = parseTaintMatchers(value);
  if (matchers.length === 0)
    throw new InvalidArgumentError(
      `no taint in ${JSON.stringify(value)}: give comma-separated taint keys, each optionally with :effect`,
    );
  return matchers;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildCommand(): Command {
  return new Command("kata-deploy-dispatcher")
    .description(
      "Create one node-pinned Job per selected node from a Job template, at most --parallelism at a time.",
    )
    .requiredOption("--job-template <path>", "YAML file holding one batch/v1 Job, cloned per node")
    .requiredOption(
      "--name-prefix <prefix>",
      "owner label value and Job name prefix (sanitized like upstream)",
    )
    .option(
      "--owner-job-name <name>",
      "the dispatcher's own Job: per-node Jobs get an ownerReference to it; Jobs of earlier runs are replaced",
    )
    .option(
      "--parallelism <n>",
      "most Jobs of this owner active at once",
      atLeast("--parallelism", true, PARALLELISM_MIN),
      PARALLELISM_DEFAULT,
    )
    .option("--nodes <names>", "comma-separated node names (selectors are then ignored)", nodeNames)
    .option("--node-selector <selector>", "label selector; repeat for a union (OR) of selectors", collect, [])
    .option(
      "--namespace <ns>",
      "namespace of the Jobs (default: $POD_NAMESPACE, the ServiceAccount namespace, default)",
    )
    .option("--node-field-selector <selector>", "field selector ANDed with every node selector")
    .option(
      "--node-page-size <n>",
      "page size of node LISTs",
      nonNegative("--node-page-size", true),
      DISPATCHER_DEFAULTS.nodePageSize,
    )
    .option(
      "--poll-interval-secs <n>",
      "re-check interval while waiting for nodes (Jobs are watched, not polled)",
      nonNegative("--poll-interval-secs", false),
      DISPATCHER_DEFAULTS.pollIntervalSecs,
    )
    .option("--ignore-node-taints", "do not skip nodes whose taints the template does not tolerate", false)
    .option(
      "--wait-for-nodes-secs <n>",
      "keep re-resolving until the set settles, up to this long; an empty set then fails",
      nonNegative("--wait-for-nodes-secs", false),
      DISPATCHER_DEFAULTS.waitForNodesSecs,
    )
    .option(
      "--node-settle-secs <n>",
      "how long the eligible set must stay unchanged (with --wait-for-nodes-secs)",
      nonNegative("--node-settle-secs", false),
      DISPATCHER_DEFAULTS.nodeSettleSecs,
    )
    .option(
      "--stuck-after-secs <n>",
      "report a Job whose pod cannot be scheduled or pulled after this long",
      nonNegative("--stuck-after-secs", false),
      DISPATCHER_DEFAULTS.stuckAfterSecs,
    )
    .option(
      "--timeout-secs <n>",
      "give up after this long (exit 1); 0 = no timeout",
      nonNegative("--timeout-secs", false),
    )
    .option(
      "--kubeconfig <path>",
      "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster ServiceAccount)",
    )
    .option("--context <name>", "kubeconfig context")
    .option("--results-file <path>", "write the JSON results document here")
    .addOption(
      new Option("--log-format <format>", "log format on stderr").choices(["text", "json"]).default("text"),
    )
    .option(
      "--progress-interval-secs <n>",
      "seconds between progress lines",
      nonNegative("--progress-interval-secs", false),
      DISPATCHER_DEFAULTS.progressIntervalSecs,
    )
    .option("--dry-run", "resolve the nodes, print the plan, create nothing", false)
    .option(
      "--skip-installed-nodes",
      "leave out nodes whose record says this template's payload succeeded there (reported succeeded: Unchanged)",
      false,
    )
    .option(
      "--cleanup-job-template <path>",
      "Job template run first on nodes this install marks but no longer selects (prefix <name-prefix>-removed)",
    )
    .option(
      "--tracking-label-prefix <prefix>",
      `prefix of the Jobs' owner/node labels and of the node records (default ${TRACKING_LABEL_PREFIX})`,
    )
    .option(
      "--owner-job-from-pod <pod>",
      "the owner is the Job that created this pod (in the Jobs' namespace); for CronJob runs",
    )
    .option(
      "--yield-to-live-run",
      "exit 0 without dispatching while another run of this prefix still works",
      false,
    )
    .option(
      "--skip-satisfied-nodes",
      "leave out nodes already at the --node-label value (and serving a required handler)",
      false,
    )
    .option("--node-label-key <key>", `the shared node label (default ${SHARED_NODE_LABEL_KEY})`)
    .option(
      "--node-label <value>",
      "after a node's Job succeeded, set the shared label and this install's mark to it",
    )
    .option(
      "--node-label-pending-value <value>",
      `the value of claimed and demoted labels (default ${PENDING_LABEL_VALUE})`,
    )
    .option(
      "--remove-node-label",
      "cleanup: demote this install's labels first, release them after success",
      false,
    )
    .option(
      "--claim-node-pending",
      "before the Job, add the pending value to the labels that are absent",
      false,
    )
    .option(
      "--instance-label-prefix <prefix>",
      `prefix of each install's mark <prefix>/<suffix> (default ${INSTANCE_LABEL_PREFIX})`,
    )
    .option(
      "--multi-install-suffix <suffix>",
      `this install's mark suffix (default ${DEFAULT_INSTANCE_SUFFIX})`,
    )
    .option(
      "--require-node-handlers <handlers>",
      "comma-separated CRI handlers; any one must be served before the node is labelled",
      handlerNames,
    )
    .option(
      "--wait-node-ready-secs <n>",
      "after a node's Job succeeded, wait up to this long for it to be Ready before labelling; 0 = no wait",
      nonNegative("--wait-node-ready-secs", false),
      DISPATCHER_DEFAULTS.waitNodeReadySecs,
    )
    .option(
      "--remove-node-taints <taints>",
      "comma-separated key or key:effect; lifted once the node is labelled (needs --node-label)",
      taintMatchers,
    )
    .option(
      "--require-node-runtime-version",
      "fail a node that does not report status.nodeInfo.containerRuntimeVersion",
      false,
    )
    .option("--require-node-machine-id", "fail a node that does not report status.nodeInfo.machineID", false)
    .option(
      "--kubelet-timeout-warn-secs <n>",
      "before each Job, warn when the kubelet's runtimeRequestTimeout is below this (needs nodes/proxy get); 0 = off",
      nonNegative("--kubelet-timeout-warn-secs", false),
      0,
    )
    .version(DISPATCHER_VERSION)
    .showHelpAfterError("(run with --help for usage)");
}

interface ParsedFlags {
  jobTemplate: string;
  namePrefix: string;
  ownerJobName?: string;
  parallelism: number;
  nodes?: string[];
  nodeSelector: string[];
  namespace?: string;
  nodeFieldSelector?: string;
  nodePageSize: number;
  pollIntervalSecs: number;
  ignoreNodeTaints: boolean;
  waitForNodesSecs: number;
  nodeSettleSecs: number;
  stuckAfterSecs: number;
  timeoutSecs?: number;
  kubeconfig?: string;
  context?: string;
  resultsFile?: string;
  logFormat: LogFormat;
  progressIntervalSecs: number;
  dryRun: boolean;
  skipInstalledNodes: boolean;
  cleanupJobTemplate?: string;
  kubeletTimeoutWarnSecs: number;
  trackingLabelPrefix?: string;
  ownerJobFromPod?: string;
  yieldToLiveRun: boolean;
  skipSatisfiedNodes: boolean;
  nodeLabelKey?: string;
  nodeLabel?: string;
  nodeLabelPendingValue?: string;
  removeNodeLabel: boolean;
  claimNodePending: boolean;
  instanceLabelPrefix?: string;
  multiInstallSuffix?: string;
  requireNodeHandlers?: string[];
  waitNodeReadySecs: number;
  removeNodeTaints?: TaintMatcher[];
  requireNodeRuntimeVersion: boolean;
  requireNodeMachineId: boolean;
}

export function optionsFromFlags(flags: ParsedFlags): DispatcherOptions {
  return {
    jobTemplate: flags.jobTemplate,
    namePrefix: flags.namePrefix,
    ownerJobName: flags.ownerJobName || undefined,
    parallelism: flags.parallelism,
    nodes: flags.nodes,
    nodeSelectors: flags.nodeSelector,
    namespace: flags.namespace,
    nodeFieldSelector: flags.nodeFieldSelector || undefined,
    nodePageSize: flags.nodePageSize,
    pollIntervalSecs: flags.pollIntervalSecs,
    ignoreNodeTaints: flags.ignoreNodeTaints,
    waitForNodesSecs: flags.waitForNodesSecs,
    nodeSettleSecs: flags.nodeSettleSecs,
    stuckAfterSecs: flags.stuckAfterSecs,
    timeoutSecs: flags.timeoutSecs || undefined,
    dryRun: flags.dryRun,
    skipInstalledNodes: flags.skipInstalledNodes,
    progressIntervalSecs: flags.progressIntervalSecs,
    cleanupJobTemplate: flags.cleanupJobTemplate || undefined,
    kubeletTimeoutWarnSecs: flags.kubeletTimeoutWarnSecs,
    trackingLabelPrefix: flags.trackingLabelPrefix,
    ownerJobFromPod: flags.ownerJobFromPod || undefined,
    yieldToLiveRun: flags.yieldToLiveRun,
    skipSatisfiedNodes: flags.skipSatisfiedNodes,
    nodeLabelKey: flags.nodeLabelKey,
    nodeLabel: flags.nodeLabel,
    nodeLabelPendingValue: flags.nodeLabelPendingValue,
    removeNodeLabel: flags.removeNodeLabel,
    claimNodePending: flags.claimNodePending,
    instanceLabelPrefix: flags.instanceLabelPrefix,
    multiInstallSuffix: flags.multiInstallSuffix,
    requireNodeHandlers: flags.requireNodeHandlers,
    waitNodeReadySecs: flags.waitNodeReadySecs,
    removeNodeTaints: flags.removeNodeTaints,
    requireNodeRuntimeVersion: flags.requireNodeRuntimeVersion,
    requireNodeMachineId: flags.requireNodeMachineId,
  };
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: CliIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

/** Parse `argv` (without node and script), run, print, write the results file; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo, stopSignal?: AbortSignal): Promise<number> {
  const command = buildCommand().exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  let flags: ParsedFlags;
  try {
    flags = command.parse(argv, { from: "user" }).opts<ParsedFlags>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const logger = streamLogger(flags.logFormat, io.stderr);
  const doc: ResultsDocument = await runDispatcher(optionsFromFlags(flags), {
    kubeconfigPath: flags.kubeconfig,
    context: flags.context,
    logger,
    stopSignal,
  });
  io.stdout(`${summarize(doc)}\n`);
  if (flags.resultsFile) {
    try {
      writeResultsFile(flags.resultsFile, doc);
    } catch (err) {
      io.stderr(`ERROR: --results-file ${flags.resultsFile}: cannot write it (${(err as Error).message})\n`);
      return doc.exitCode === 0 ? 1 : doc.exitCode;
    }
  }
  return doc.exitCode;
}

/** Process entry: signals, exit code. Used by `npm run dispatch` and by the bundle. */
export function runCli(): void {
  const stop = new AbortController();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: no further Jobs are created; finishing with a summary\n`);
      stop.abort();
    });
  }
  runCommand(
    "ERROR",
    () => main(process.argv.slice(2), processIo, stop.signal),
    2,
    (err) => (err instanceof Error ? (err.stack ?? err.message) : String(err)),
  );
}

if (require.main === module) runCli();
