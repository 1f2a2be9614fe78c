// The dynamic provider whose lifecycle is chart 4.0.0's hooks: create/update = post-install/post-upgrade (install
// dispatcher, or the DaemonSet wait), delete = pre-delete (cleanup dispatcher), read = refresh of recorded results.
// It is serialized into the Pulumi state and runs from the consumer's folder, so it and every local file it imports
// use Node built-ins only (checked by tests/rollout/serialization.test.ts).
import { randomBytes } from "node:crypto";
import type * as dynamic from "@pulumi/pulumi/dynamic";
import { splitHooks, type Hook, type HookPhase } from "../kube/helmHooks";
import { nodeResultFromJob, jobNodeName, jobOutcome, type JobLike } from "../kube/jobStatus";
import { withSelectionArgs } from "../kube/nodeSelection";
import {
  finalMessage,
  kataCorrection,
  kataNodes,
  summarize,
  type KataCorrection,
  releaseJobs,
} from "./aggregate";
import { decodeResults, encodeResults } from "./compact";
import { ROLLOUT_DEFAULTS } from "./defaults";
import { liveConnection } from "./ambient";
import { connectionSpecErrors, describeConnection, sameServer } from "./connection";
import { kubeHookCluster, runHookPhase, type HookOutcome, type HookPhaseResult } from "./hookRunner";
import { KubeClient } from "./kubeClient";
import { canonicalJson } from "../kube/payload";
import { CHART_NAME } from "../chart/names";
import type {
  DispatcherStage,
  KubeObject,
  NodeResult,
  ReleaseObjectRef,
  RolloutInputs,
  RolloutOutputs,
} from "./types";
import {
  NODES_PATH,
  OWNER_LABEL,
  RUN_ID_ANNOTATION,
  RUN_KEY_ANNOTATION,
  daemonSetsPath,
  deleteAndWaitGone,
  jobsPath,
  nodesNeedingInstall,
  podsOfJob,
  podsPath,
  runDispatcherStage,
  stderrLogger,
  waitDaemonSet,
  waitGone,
  type Logger,
  type StageRunResult,
} from "./waiter";

const KUBE_SYSTEM_PATH = "/api/v1/namespaces/kube-system";

/** `--nodes=` lists longer than this fall back to a full run (Linux caps one argument at 128 KiB). */
const MAX_NODES_ARG = 100_000;
export { RUN_ID_ANNOTATION };

/** What the dynamic provider host passes for a value not known yet (preview): `@pulumi/pulumi` runtime/rpc unknownValue. */
const UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN_VALUE) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/** The error shape the engine records as "created/updated but failed" with outputs kept (pulumi-facts §4.1). */
export class RolloutFailedError extends Error {
  constructor(
    message: string,
    readonly id: string,
    readonly properties: Record<string, unknown>,
  ) {
    super(message);
    this.name = "RolloutFailedError";
    this.reasons = [message];
  }
  /** Read by the dynamic provider host into ErrorResourceInitFailed.reasons. */
  readonly reasons: string[];
}

export function rolloutId(inputs: Pick<RolloutInputs, "namespace" | "daemonSetName">): string {
  return `${inputs.namespace}/${inputs.daemonSetName}`;
}

function label(inputs: RolloutInputs, what: string): string {
  return `${inputs.displayName ?? `kata-deploy ${inputs.namespace}/${inputs.daemonSetName}`} ${what}`;
}

/**
 * A run's identity: `<UTC time to the millisecond>-<run key prefix>-<random>`. It sorts by time and names the run
 * key, and is unique per run by construction: 64 random bits make two runs' ids differ even within one
 * millisecond and one run key (a heal re-run keeps its key), and a collision with the previous run is redrawn.
 */
export function newRunId(runKey: string, previous?: string): string {
  const time = new Date().toISOString().replace(/[-:]/g, "");
  const key = runKey.replace(/^v\d+:/, "").slice(0, 8);
  for (;;) {
    const id = `${time}-${key}-${randomBytes(8).toString("hex")}`;
    if (id !== previous) return id;
  }
}

/** A copy of a dispatcher Job whose dispatcher argument list (the one with `--job-template=`) is rewritten. */
function withDispatcherArgs(job: KubeObject, rewrite: (args: string[]) => string[]): KubeObject {
  const copy = JSON.parse(JSON.stringify(job)) as KubeObject;
  const pod = (
    copy.spec as { template?: { spec?: { containers?: { args?: string[]; command?: string[] }[] } } }
  )?.template?.spec;
  for (const c of pod?.containers ?? []) {
    for (const key of ["args", "command"] as const) {
      const list = c[key];
      if (list && list.some((a) => a.startsWith("--job-template="))) c[key] = rewrite(list);
    }
  }
  return copy;
}

/** The dispatcher Job with its node selection replaced by explicit names (drift healing). */
export function withExplicitNodes(job: KubeObject, nodes: readonly string[]): KubeObject {
  return withDispatcherArgs(job, (list) => withSelectionArgs(list, { nodes: [...nodes] }));
}

/** The dispatcher Job told to leave out nodes that already carry its payload (kube/payload.ts). */
export function withSkipInstalled(job: KubeObject): KubeObject {
  return withDispatcherArgs(job, (list) =>
    list.includes(SKIP_INSTALLED_FLAG) ? list : [...list, SKIP_INSTALLED_FLAG],
  );
}

const SKIP_INSTALLED_FLAG = "--skip-installed-nodes";

/**
 * Whether this run re-installs every node, including those whose record says they carry the payload already: a
 * `rerunToken` that changed (or is set on a create, where nothing says which run it forced last) asks for exactly
 * that. State written before the token was an input has none: a token set then counts as changed once.
 */
export function reinstallsEveryNode(olds: RolloutOutputs | undefined, news: RolloutInputs): boolean {
  return (olds?.rerunToken ?? "") !== (news.rerunToken ?? "");
}

/**
 * The Job that replaces a dead dispatcher: the same Job for just the nodes left, without `--owner-job-name` (the
 * dispatcher treats per-node Jobs owned by another dispatcher Job as an earlier run's and deletes them; these are this
 * run's, made by the Job it replaces).
 */
export function replacementDispatcherJob(job: KubeObject, nodes: readonly string[]): KubeObject {
  return withDispatcherArgs(withExplicitNodes(job, nodes), (list) =>
    list.filter((a) => !a.startsWith("--owner-job-name=")),
  );
}

function annotated(job: KubeObject, runId: string, runKey: string): KubeObject {
  return {
    ...job,
    metadata: {
      ...job.metadata,
      annotations: {
        ...(job.metadata?.annotations ?? {}),
        [RUN_ID_ANNOTATION]: runId,
        [RUN_KEY_ANNOTATION]: runKey,
      },
    },
  };
}

function stuckGrace(inputs: RolloutInputs): number {
  return inputs.stuckGraceSeconds ?? ROLLOUT_DEFAULTS.stuckGraceSeconds;
}

/**
 * One cluster (components/README.md, Connection): with a Kubernetes provider of the caller's, the chart went to that
 * provider's cluster; the connection must reach the same one (kube-system's uid as the provider read it) before
 * anything is changed.
 */
async function ensureSameCluster(client: KubeClient, inputs: RolloutInputs): Promise<void> {
  if (!inputs.clusterUid) return;
  const kubeSystem = await client.getOptional<KubeObject>(KUBE_SYSTEM_PATH, "namespace kube-system");
  const uid = kubeSystem?.metadata?.uid;
  if (uid === inputs.clusterUid) return;
  throw new Error(
    `${label(inputs, "rollout")}: the kubeconfig argument reaches ${describeConnection(inputs.connection)}, whose ` +
      `kube-system namespace has uid ${uid ?? "(none)"}, but the chart's Kubernetes provider reads uid ` +
      `${inputs.clusterUid} there: another cluster. Nothing was changed; pass that provider's kubeconfig as the ` +
      `kubeconfig argument`,
  );
}

/** Mode switch, daemonset → job: the DaemonSet and its pods (whose SIGTERM reverts the node) must be gone first. */
async function ensureDaemonSetGone(
  client: KubeClient,
  inputs: RolloutInputs,
  previousMode: string | undefined,
  deadline: number,
  log: Logger,
): Promise<void> {
  const ns = inputs.namespace;
  const ds = await client.getOptional<KubeObject>(daemonSetsPath(ns, inputs.daemonSetName));
  if (ds) {
    if (previousMode === "daemonset" && !ds.metadata?.deletionTimestamp) {
      // Helm's upgrade deletes objects the new manifest lacks before post-upgrade hooks run; Pulumi would only delete
      // the DaemonSet after this update, so the rollout does it now to keep Helm's order.
      log(
        `switching to job mode: deleting DaemonSet ${ns}/${inputs.daemonSetName} and waiting for its pods to finish their cleanup`,
      );
      await client.delete(daemonSetsPath(ns, inputs.daemonSetName), "Foreground");
    } else {
      log(`waiting for DaemonSet ${ns}/${inputs.daemonSetName} to be gone before dispatching install Jobs`);
    }
    await waitGone(
      client,
      daemonSetsPath(ns),
      { name: inputs.daemonSetName },
      deadline,
      `DaemonSet ${ns}/${inputs.daemonSetName}`,
    );
  }
  const podSelector = `name=${inputs.daemonSetName}`;
  await waitGone(
    client,
    podsPath(ns),
    { labelSelector: podSelector },
    deadline,
    `pods of DaemonSet ${inputs.daemonSetName} (${podSelector})`,
  );
}

/** Mode switch, job → daemonset (and destroy): stop job-mode Jobs of the install stage and wait until they are gone. */
async function ensureInstallJobsGone(
  client: KubeClient,
  inputs: RolloutInputs,
  ownerValue: string | undefined,
  deadline: number,
  log: Logger,
): Promise<void> {
  const ns = inputs.namespace;
  const a = await deleteAndWaitGone(
    client,
    jobsPath(ns),
    { name: inputs.installDispatcherJobName },
    deadline,
    "install dispatcher Job",
    "Background",
  );
  let b = 0;
  if (ownerValue) {
    b = await deleteAndWaitGone(
      client,
      jobsPath(ns),
      { labelSelector: `${OWNER_LABEL}=${ownerValue}` },
      deadline,
      "per-node install Jobs",
      "Foreground",
    );
  }
  if (a || b)
    log(`removed ${a} install dispatcher Job(s) and ${b} per-node install Job(s) left from job mode`);
}

/** Whether a run of the dispatcher failed (a node failed or is unknown, the dispatcher failed, or time ran out). */
function runFailed(run: StageRunResult, results: NodeResult[] = run.results): boolean {
  const summary = summarize(results, 0);
  return summary.failed > 0 || (summary.unknown ?? 0) > 0 || !!run.dispatcherFailure || run.timedOut;
}

/** The dispatcher Job's own hook among the chart's hooks: a Job of the same name. */
function isDispatcherHook(hook: Hook, job: KubeObject | undefined): boolean {
  return hook.kind === "Job" && job?.metadata?.name !== undefined && hook.name === job.metadata.name;
}

interface PhaseRun {
  /** The dispatcher's run, when it ran. */
  run?: StageRunResult;
  /** The hook phase, when the inputs carry the chart's hooks (state of earlier versions does not). */
  phase?: HookPhaseResult;
}

/**
 * Runs a phase of the chart's hooks by Helm's rules (rollout/hookRunner.ts). The dispatcher's own hook is run by
 * `dispatch`, which follows its per-node Jobs for results; every other hook is applied and awaited as Helm does.
 * Inputs without hooks (recorded by an earlier version) run just the dispatcher.
 */
async function runPhase(
  client: KubeClient,
  inputs: RolloutInputs,
  phase: HookPhase,
  dispatcherJob: KubeObject | undefined,
  dispatch: (() => Promise<StageRunResult>) | undefined,
  deadline: number,
  log: Logger,
): Promise<PhaseRun> {
  if (!inputs.hooks) return { run: dispatch ? await dispatch() : undefined };
  let run: StageRunResult | undefined;
  const runHook = (hook: Hook): Promise<HookOutcome> | undefined =>
    dispatch && isDispatcherHook(hook, dispatcherJob)
      ? dispatch().then((r) => {
          run = r;
          return { ok: !runFailed(r), message: r.dispatcherFailure };
        })
      : undefined;
  const result = await runHookPhase(
    phase,
    splitHooks(inputs.hooks).hooks,
    kubeHookCluster(client, inputs.namespace),
    { deadline, log, runHook },
  );
  // A render whose phase lacks the dispatcher's hook (none in chart 4.0.0) still runs the dispatcher.
  if (!run && !result.failed && dispatch) run = await dispatch();
  return { run, phase: result };
}

/** A phase that failed before the dispatcher could run: the hook and why. */
function hookFailureMessage(what: string, phase: HookPhaseResult | undefined): string | undefined {
  return phase?.failed
    ? `${what}: ${phase.phase} hook ${phase.failed.hook} failed: ${phase.failed.message}`
    : undefined;
}

/** A drift-healing run: the selected nodes without a successful install, and the results recorded so far. */
interface HealPlan {
  nodes: string[];
  recorded: NodeResult[];
}

interface RunOutcome {
  results: NodeResult[];
  run: StageRunResult;
  phase?: HookPhaseResult;
  /** Where Kata is now, read from the nodes after the run (undefined when they could not be listed). */
  correction?: KataCorrection;
}

/** This release's install and cleanup owners, whose records on the nodes say where Kata is (job mode). */
/** Lists every node (best-effort) and says where Kata is installed now, as a correction of `results`. */
async function correctionNow(
  client: KubeClient,
  inputs: RolloutInputs,
  results: readonly NodeResult[],
): Promise<KataCorrection | undefined> {
  // Labels and annotations are all the records need: metadata only.
  const nodes = await client.list<KubeObject>(NODES_PATH, {}, "list nodes", true).catch(() => undefined);
  return nodes ? kataCorrection(results, nodes.items, releaseJobs(inputs)) : undefined;
}

async function runInstall(
  inputs: RolloutInputs,
  olds: RolloutOutputs | undefined,
  heal: HealPlan | undefined,
  runId: string,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<RunOutcome> {
  const client = new KubeClient(liveConnection(inputs.connection));
  const deadline = Date.now() + inputs.timeoutSeconds * 1000;
  // Helm runs post-install hooks on the first install, post-upgrade ones on every later one.
  const installPhase: HookPhase = olds ? "post-upgrade" : "post-install";
  try {
    await ensureSameCluster(client, inputs);
    if (inputs.mode === "daemonset") {
      if (!inputs.daemonSet) throw new Error("daemonSet: required in daemonset mode");
      await ensureInstallJobsGone(
        client,
        inputs,
        olds?.install?.ownerValue ?? inputs.install?.ownerValue,
        deadline,
        log,
      );
      const run = await waitDaemonSet({
        client,
        namespace: inputs.namespace,
        target: inputs.daemonSet,
        deadline,
        timeoutSeconds: inputs.timeoutSeconds,
        stuckGraceSeconds: stuckGrace(inputs),
        log,
        label: label(inputs, "install (daemonset)"),
        signal,
      });
      // The chart's post-install/post-upgrade hooks (none in chart 4.0.0's daemonset mode).
      const { phase } = await runPhase(client, inputs, installPhase, undefined, undefined, deadline, log);
      return {
        results: run.results,
        run,
        phase,
        correction: await correctionNow(client, inputs, run.results),
      };
    }
    const stage = inputs.install as DispatcherStage;
    await ensureDaemonSetGone(client, inputs, olds?.mode, deadline, log);
    // Only nodes without this payload get a Job, unless the rerunToken changed (the bundled dispatcher only).
    const skipPayload = stage.payload && !reinstallsEveryNode(olds, inputs) ? stage.payload : undefined;
    let job = skipPayload ? withSkipInstalled(stage.job) : stage.job;
    let runStage = stage;
    let merged: NodeResult[] | undefined;
    if (heal && heal.nodes.join(",").length <= MAX_NODES_ARG) {
      log(
        `${label(inputs, "install")}: healing ${heal.nodes.length} selected node(s) without a successful install`,
      );
      job = withExplicitNodes(job, heal.nodes);
      // The waiter follows this run's selection only: the named nodes.
      runStage = { ...stage, selection: { nodes: [...heal.nodes] } };
      const healed = new Set(heal.nodes);
      merged = heal.recorded.filter((r) => !healed.has(r.node));
    } else if (heal) {
      log(
        `${label(inputs, "install")}: ${heal.nodes.length} nodes to heal are too many to name; running the full selection`,
      );
    }
    const dispatch = () =>
      runDispatcherStage({
        client,
        namespace: inputs.namespace,
        stage: runStage,
        job: annotated(job, runId, inputs.runKey),
        replacementJob: (nodes) => annotated(replacementDispatcherJob(job, nodes), runId, inputs.runKey),
        runKey: inputs.runKey,
        skipPayload,
        deadline,
        timeoutSeconds: inputs.timeoutSeconds,
        stuckGraceSeconds: stuckGrace(inputs),
        log,
        label: label(inputs, "install"),
        signal,
      });
    const { run, phase } = await runPhase(client, inputs, installPhase, stage.job, dispatch, deadline, log);
    if (!run)
      throw new Error(hookFailureMessage(label(inputs, "install"), phase) ?? "internal: no dispatcher run");
    const results = merged
      ? [...merged, ...run.results].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
      : run.results;
    return { results, run, phase, correction: await correctionNow(client, inputs, results) };
  } finally {
    client.close();
  }
}

function outputsFor(
  inputs: RolloutInputs,
  results: NodeResult[],
  run: StageRunResult,
  runId: string,
  correction: KataCorrection | undefined,
): RolloutOutputs {
  return {
    ...inputs,
    results: encodeResults(results, inputs.mode === "job" ? (inputs.install?.ownerValue ?? "") : ""),
    summary: summarize(results, Math.round((run.finishedAt - run.startedAt) / 1000)),
    runId,
    lastRunKey: inputs.runKey,
    ...withCorrection(correction),
  };
}

/** The correction as stored: absent when there is none (most runs), so the state does not grow. */
function withCorrection(correction: KataCorrection | undefined): Pick<RolloutOutputs, "kataCorrection"> {
  return correction && (correction.add || correction.remove) ? { kataCorrection: correction } : {};
}

/** The final message, with what the run did beyond the plain hook (adopted, waited, replaced its dispatcher). */
function withNotes(message: string, run: StageRunResult): string {
  return run.notes?.length ? `${message} (${run.notes.join("; ")})` : message;
}

/** Run the install and turn a failed or timed-out run into the engine's "failed, outputs kept" error. */
async function install(
  inputs: RolloutInputs,
  olds: RolloutOutputs | undefined,
  heal: HealPlan | undefined,
  signal: AbortSignal | undefined,
): Promise<RolloutOutputs> {
  const log = stderrLogger("kata-rollout");
  const runId = newRunId(inputs.runKey, olds?.runId);
  const { results, run, phase, correction } = await runInstall(inputs, olds, heal, runId, log, signal);
  const outs = outputsFor(inputs, results, run, runId, correction);
  const hookFailure = hookFailureMessage("hooks", phase);
  const message =
    withNotes(
      finalMessage(label(inputs, "install"), outs.summary, results, {
        timedOut: run.timedOut,
        dispatcherFailure: run.dispatcherFailure,
      }),
      run,
    ) + (hookFailure && !runFailed(run, results) ? `; ${hookFailure}` : "");
  log(message);
  // Unknown outcomes fail the `up` too (nothing confirms Kata there); the next `up` heals those nodes.
  if (runFailed(run, results) || hookFailure) {
    throw new RolloutFailedError(message, rolloutId(inputs), outs as unknown as Record<string, unknown>);
  }
  return outs;
}

/**
 * Inputs whose change only affects later runs (no re-run by itself). Of the connection only the API server counts:
 * who connects (a CI or a laptop kubeconfig, a rotated token, an ambient reference) is identity, not a change.
 */
function settingsChanged(olds: RolloutOutputs, news: RolloutInputs): boolean {
  if (!sameServer(olds.connection?.server ?? "", news.connection?.server ?? "")) return true;
  const pick = (x: RolloutInputs) =>
    canonicalJson({
      namespace: x.namespace,
      releaseName: x.releaseName,
      install: x.install,
      cleanup: x.cleanup,
      daemonSet: x.daemonSet,
      timeoutSeconds: x.timeoutSeconds,
      healDrift: x.healDrift,
      cleanupOnDestroy: x.cleanupOnDestroy,
      stuckGraceSeconds: x.stuckGraceSeconds,
      displayName: x.displayName,
      hooks: x.hooks,
      releaseObjects: x.releaseObjects,
      chartSide: x.chartSide,
      clusterUid: x.clusterUid,
    });
  return pick(olds) !== pick(news);
}

/** Settings only: the new inputs with the recorded run. */
function keepRecordedRun(olds: RolloutOutputs, news: RolloutInputs): RolloutOutputs {
  return {
    ...news,
    results: olds.results,
    summary: olds.summary,
    runId: olds.runId,
    lastRunKey: olds.lastRunKey,
    ...withCorrection(olds.kataCorrection),
  };
}

/**
 * What the install plan in the inputs (read from the nodes at program time: rollout/installPlan.ts) says of an update:
 * true when nodes need this install, or when the nodes could not be read (a preview then shows the update and why,
 * never "no change"); false when every selected node carries it; undefined without a plan (the provider decides from
 * the last run and its own node list, as before plans existed).
 */
function plannedInstalls(news: RolloutInputs): boolean | undefined {
  const plan = news.plan;
  if (!plan || news.chartSide === "before") return undefined;
  const log = stderrLogger("kata-rollout");
  if (plan.unreadable) {
    log(
      `${label(news, "install")}: the install plan is unknown (${plan.unreadable}); an update decides when it runs`,
    );
    return true;
  }
  if (!plan.install) return false;
  const reasons = [
    plan.new && `new: ${plan.new}`,
    plan.changed && `another payload: ${plan.changed}`,
    plan.failed && `failed before: ${plan.failed}`,
  ].filter(Boolean);
  log(`${label(news, "install")}: an update installs ${plan.install} node(s) (${reasons.join("; ")})`);
  return true;
}

/** The multi-install suffix in a chart base name: `kata-deploy-<suffix>`, or "" for `kata-deploy`. */
function suffixOf(base: string): string {
  return base === CHART_NAME ? "" : base.slice(CHART_NAME.length + 1);
}

/**
 * Chart 4.1.0 and later refuse an upgrade that changes the release's mode or multi-install suffix (their guard needs
 * `.Release.IsUpgrade`, which no Pulumi render sets), so `check` refuses it here, on both sides of the chart: the
 * release hooks' side is checked before the chart is touched. Names both values and the way out.
 */
export function immutableIdentityFailures(
  olds: Partial<RolloutInputs>,
  news: RolloutInputs,
): { property: string; reason: string }[] {
  if (!news.identityImmutable || !olds.mode || !olds.daemonSetName) return [];
  const recreate = `destroy this KataDeploy (remove it and run pulumi up, or pulumi destroy) and create it again`;
  const failures: { property: string; reason: string }[] = [];
  if (!containsUnknown(news.mode) && olds.mode !== news.mode)
    failures.push({
      property: "mode",
      reason: `deploymentMode is immutable for a release of chart 4.1.0 and later: it was "${olds.mode}", now "${news.mode}". Keep "${olds.mode}", or ${recreate} in ${news.mode} mode`,
    });
  const [was, now] = [suffixOf(olds.daemonSetName), suffixOf(news.daemonSetName)];
  if (!containsUnknown(news.daemonSetName) && was !== now)
    failures.push({
      property: "daemonSetName",
      reason: `multiInstallSuffix is immutable for a release of chart 4.1.0 and later: it was ${JSON.stringify(was)}, now ${JSON.stringify(now)}. Keep ${JSON.stringify(was)}, or ${recreate} with the new suffix`,
    });
  return failures;
}

/** Nodes the last run did not install (failed, or outcome unknown): pending work until a run succeeds there. */
function unfinishedNodes(results: readonly NodeResult[]): string[] {
  return results.filter((r) => r.outcome === "failed" || r.outcome === "unknown").map((r) => r.node);
}

/**
 * The inputs that name the install itself: the release's namespace and name, and the chart's object names (the
 * suffix is in them). A change of any is another install, so the rollout is replaced, old one first: its delete
 * cleans the nodes of the old install, then the create installs the new one (issue #13 item 6). The release hooks'
 * side is updated instead: its delete waits for the release's objects to be gone. Unknown values (preview) and states
 * written before `releaseName` was an input compare equal.
 */
export function identityChanges(olds: RolloutOutputs, news: RolloutInputs): string[] {
  if (news.chartSide === "before") return [];
  const keys = ["namespace", "releaseName", "daemonSetName", "installDispatcherJobName"] as const;
  return keys.filter((k) => {
    const was = olds[k];
    const now = news[k];
    return was !== undefined && now !== undefined && !containsUnknown(now) && was !== now;
  });
}

/** Selected nodes without a successful install (job mode), or undefined when the cluster cannot tell us. */
async function drift(
  inputs: RolloutInputs,
  recorded: NodeResult[],
  log: Logger,
): Promise<string[] | undefined> {
  if (inputs.mode !== "job" || !inputs.install) return [];
  let client: KubeClient | undefined;
  try {
    client = new KubeClient(liveConnection(inputs.connection), { maxAttempts: 2, requestTimeoutMs: 15_000 });
    const missing = await nodesNeedingInstall(client, inputs.install, new Set(kataNodes(recorded)));
    return missing.map((n) => n.name);
  } catch (err) {
    log(
      `drift check skipped: cannot list nodes at ${describeConnection(inputs.connection)}: ${(err as Error).message}`,
    );
    return undefined;
  } finally {
    client?.close();
  }
}

function listNames(names: readonly string[], limit = 10): string {
  return names.length > limit
    ? `${names.slice(0, limit).join(", ")} and ${names.length - limit} more`
    : names.join(", ");
}

/** How long the post-delete side waits for the chart's objects to be gone first (Helm's default --timeout). */
const CHART_GONE_WAIT_MS = 300_000;

function refObject(r: ReleaseObjectRef): KubeObject {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) },
  };
}

function refName(r: ReleaseObjectRef): string {
  return `${r.kind}/${r.name}`;
}

/**
 * The outputs of inputs that ran nothing: the inputs, no node results. The before-chart side's outputs, and what a
 * stateless caller (the demo's `--destroy`) hands to `delete` for a release it did not record.
 */
export function outputsWithoutRun(inputs: RolloutInputs): RolloutOutputs {
  return {
    ...inputs,
    results: encodeResults([]),
    summary: summarize([], 0),
    runId: "",
    lastRunKey: inputs.runKey,
  };
}

/** Create/update of the before-chart side: the chart's pre-install or pre-upgrade hooks (none in chart 4.0.0). */
async function beforeChart(inputs: RolloutInputs, phase: HookPhase, log: Logger): Promise<RolloutOutputs> {
  const hooks = splitHooks(inputs.hooks ?? []).hooks;
  if (hooks.some((h) => h.phases.includes(phase))) {
    const client = new KubeClient(inputs.connection);
    try {
      const result = await runHookPhase(phase, hooks, kubeHookCluster(client, inputs.namespace), {
        deadline: Date.now() + inputs.timeoutSeconds * 1000,
        log,
      });
      const failure = hookFailureMessage(label(inputs, phase), result);
      if (failure) throw new Error(failure);
    } finally {
      client.close();
    }
  }
  return outputsWithoutRun(inputs);
}

/**
 * Delete of the before-chart side, which Pulumi runs once the chart's objects are deleted: as `helm uninstall` goes
 * on after deleting the release's objects, it waits until they are gone, runs the post-delete hooks, and then removes
 * the objects the chart marks `helm.sh/resource-policy: keep` (helm.v4.Chart retains them on delete): this project
 * removes them with the stack, as chart 4.0.0's own post-delete Job does, so that the next `up` can create them.
 */
async function afterChartDeleted(props: RolloutOutputs, log: Logger): Promise<void> {
  const client = new KubeClient(props.connection);
  const deadline = Date.now() + props.timeoutSeconds * 1000;
  const cluster = kubeHookCluster(client, props.namespace);
  try {
    const refs = props.releaseObjects ?? [];
    const goneBy = Math.min(deadline, Date.now() + CHART_GONE_WAIT_MS);
    const left: string[] = [];
    for (const r of refs.filter((x) => !x.keep))
      if (!(await cluster.waitGone(refObject(r), goneBy))) left.push(refName(r));
    if (left.length)
      log(
        `${label(props, "uninstall")}: still present after the chart's deletion: ${listNames(left)}; running the post-delete hooks anyway, as helm uninstall does`,
      );
    const phase = await runHookPhase("post-delete", splitHooks(props.hooks ?? []).hooks, cluster, {
      deadline,
      log,
    });
    const kept = refs.filter((x) => x.keep);
    const failure = hookFailureMessage(label(props, "uninstall"), phase);
    if (failure) {
      throw new Error(
        `${failure}. The release's kept objects (${listNames(kept.map(refName))}) stay until a destroy succeeds`,
      );
    }
    for (const r of kept) await cluster.deleteAndWait(refObject(r), deadline);
    if (kept.length)
      log(
        `${label(props, "uninstall")}: removed the release's kept objects: ${listNames(kept.map(refName))}`,
      );
  } finally {
    client.close();
  }
}

/**
 * The rollout's CRUD, shared by both hosts: the dynamic resource (TypeScript library users; the Node.js host calls
 * without `signal`) and the package's own plugin (plugin/), which passes its Cancel as `signal`: waits stop at once,
 * what runs in the cluster keeps running, and the next create/update of the same run key adopts it.
 */
export const rolloutProvider = {
  async check(olds: RolloutInputs, news: RolloutInputs) {
    const failures: { property: string; reason: string }[] = [...immutableIdentityFailures(olds ?? {}, news)];
    for (const e of connectionSpecErrors(news.connection))
      failures.push({ property: "connection", reason: e });
    if (!news.namespace) failures.push({ property: "namespace", reason: "expected the release namespace" });
    if (news.mode !== "job" && news.mode !== "daemonset") {
      failures.push({
        property: "mode",
        reason: `expected "job" or "daemonset", got ${JSON.stringify(news.mode)}`,
      });
    }
    if (news.mode === "job" && !news.install?.job?.metadata?.name) {
      failures.push({
        property: "install.job",
        reason: "job mode needs the rendered install dispatcher Job",
      });
    }
    if (news.mode === "job" && news.cleanupOnDestroy && !news.cleanup?.job?.metadata?.name) {
      failures.push({
        property: "cleanup.job",
        reason: "cleanupOnDestroy needs the rendered cleanup dispatcher Job",
      });
    }
    if (news.mode === "daemonset" && !news.daemonSet?.name) {
      failures.push({ property: "daemonSet", reason: "daemonset mode needs the DaemonSet to wait for" });
    }
    if (!(Number.isFinite(news.timeoutSeconds) && news.timeoutSeconds > 0)) {
      failures.push({ property: "timeoutSeconds", reason: "expected a positive number of seconds" });
    }
    // In a preview, inputs computed from other resources are unknown: judge only what is known.
    const record = news as unknown as Record<string, unknown>;
    const known = failures.filter(
      (f) => !containsUnknown(record[f.property.split(".")[0]]) && !containsUnknown(record.mode),
    );
    return { inputs: news, failures: known };
  },

  async diff(_id: string, olds: RolloutOutputs, news: RolloutInputs) {
    const replaces = identityChanges(olds, news);
    if (replaces.length) return { changes: true, replaces, deleteBeforeReplace: true };
    // Unknown inputs (preview) may hide a new run key: show the update.
    if (containsUnknown(news)) return { changes: true };
    if (olds.lastRunKey !== news.runKey || olds.mode !== news.mode) return { changes: true };
    if (settingsChanged(olds, news)) return { changes: true };
    if (news.chartSide === "before") return { changes: false };
    const planned = plannedInstalls(news);
    if (planned !== undefined) return { changes: planned };
    const pending = unfinishedNodes(decodeResults(olds.results));
    if (pending.length) {
      stderrLogger("kata-rollout")(
        `${label(news, "install")}: ${pending.length} node(s) did not succeed in the last run (${listNames(pending)}); an update will install them again`,
      );
      return { changes: true };
    }
    if (news.healDrift && news.mode === "job") {
      const log = stderrLogger("kata-rollout");
      const missing = await drift(news, decodeResults(olds.results), log);
      if (missing && missing.length) {
        log(
          `${label(news, "install")}: ${missing.length} selected node(s) have no successful install (${listNames(missing)}); an update will install them`,
        );
        return { changes: true };
      }
    }
    return { changes: false };
  },

  async create(inputs: RolloutInputs, signal?: AbortSignal) {
    if (inputs.chartSide === "before") {
      const outs = await beforeChart(inputs, "pre-install", stderrLogger("kata-rollout"));
      return { id: `${rolloutId(inputs)}#before-chart`, outs };
    }
    const outs = await install(inputs, undefined, undefined, signal);
    return { id: rolloutId(inputs), outs };
  },

  async update(_id: string, olds: RolloutOutputs, news: RolloutInputs, signal?: AbortSignal) {
    const rerun = olds.lastRunKey !== news.runKey || olds.mode !== news.mode;
    if (news.chartSide === "before") {
      // Helm runs pre-upgrade hooks on every upgrade; here when the release re-runs (its run key changed).
      const log = stderrLogger("kata-rollout");
      return { outs: rerun ? await beforeChart(news, "pre-upgrade", log) : outputsWithoutRun(news) };
    }
    // A re-run, or nodes the plan read at program time says need this install: the dispatcher covers the selection
    // and leaves out every node that carries the payload already (--skip-installed-nodes).
    if (rerun || plannedInstalls(news)) return { outs: await install(news, olds, undefined, signal) };
    const recorded = decodeResults(olds.results);
    // The plan says every selected node carries this install.
    if (news.plan) return { outs: keepRecordedRun(olds, news) };
    if (news.healDrift && news.mode === "job") {
      const log = stderrLogger("kata-rollout");
      const missing = await drift(news, recorded, log);
      if (missing && missing.length)
        return { outs: await install(news, olds, { nodes: missing, recorded }, signal) };
    }
    // The last run's failures stay pending work (drift healing off, or the cluster could not be listed just now).
    const pending = unfinishedNodes(recorded);
    if (pending.length) {
      const heal = news.mode === "job" ? { nodes: pending, recorded } : undefined;
      return { outs: await install(news, olds, heal, signal) };
    }
    return { outs: keepRecordedRun(olds, news) };
  },

  async read(id: string, props?: RolloutOutputs) {
    if (!props || props.chartSide === "before") return props ? { id, props } : { id };
    const log = stderrLogger("kata-rollout");
    const recorded = decodeResults(props.results);
    let client: KubeClient | undefined;
    try {
      client = new KubeClient(liveConnection(props.connection), { maxAttempts: 2 });
      if (props.mode !== "job" || !props.install) {
        const correction = await correctionNow(client, props, recorded);
        const { kataCorrection: _previous, ...rest } = props;
        return { id, props: { ...rest, ...withCorrection(correction ?? props.kataCorrection) } };
      }
      const owner = props.install.ownerValue;
      const live = await client.list<JobLike>(jobsPath(props.namespace), {
        labelSelector: `${OWNER_LABEL}=${owner}`,
      });
      const byNode = new Map<string, JobLike>();
      for (const j of live.items) {
        const node = jobNodeName(j);
        if (node) byNode.set(node, j);
      }
      let refreshed = 0;
      const results: NodeResult[] = [];
      for (const r of recorded) {
        const job = byNode.get(r.node);
        // Jobs already garbage-collected (TTL) keep their recorded result; live, finished ones are re-read.
        if (!job || job.metadata?.name !== r.job || !jobOutcome(job).terminal) {
          results.push(r);
          continue;
        }
        const pods =
          jobOutcome(job).phase === "failed"
            ? await podsOfJob(client, props.namespace, r.job ?? "")
            : undefined;
        const fresh = nodeResultFromJob(job, pods);
        if (fresh) {
          refreshed++;
          results.push({ ...fresh, node: r.node });
        } else results.push(r);
      }
      log(
        `refresh: ${refreshed} node result(s) re-read from live Jobs, ${recorded.length - refreshed} kept from the state`,
      );
      const correction = (await correctionNow(client, props, results)) ?? props.kataCorrection;
      const { kataCorrection: _previous, ...rest } = props;
      return {
        id,
        props: {
          ...rest,
          results: encodeResults(results, owner),
          summary: summarize(results, props.summary?.durationSeconds ?? 0),
          ...withCorrection(correction),
        },
      };
    } catch (err) {
      log(`refresh: cluster not readable (${(err as Error).message}); keeping the recorded results`);
      return { id, props };
    } finally {
      client?.close();
    }
  },

  async delete(_id: string, props: RolloutOutputs, signal?: AbortSignal) {
    const log = stderrLogger("kata-rollout");
    if (props.chartSide === "before") return afterChartDeleted(props, log);
    const skip = !props.cleanupOnDestroy || process.env.KATA_DEPLOY_SKIP_CLEANUP === "1";
    if (skip) {
      log(
        `${label(props, "cleanup")}: skipped (cleanupOnDestroy is off or KATA_DEPLOY_SKIP_CLEANUP=1); nodes keep Kata`,
      );
      return;
    }
    // The credentials in effect now: an ambient reference is re-read from this process's environment.
    const client = new KubeClient(liveConnection(props.connection));
    const deadline = Date.now() + props.timeoutSeconds * 1000;
    try {
      await ensureSameCluster(client, props);
      if (props.mode !== "job") {
        // The chart's pre-delete hooks (none in chart 4.0.0's daemonset mode: the DaemonSet's pods clean on SIGTERM).
        const { phase } = await runPhase(client, props, "pre-delete", undefined, undefined, deadline, log);
        const failure = hookFailureMessage(label(props, "uninstall"), phase);
        if (failure) throw new Error(failure);
        return;
      }
      const stage = props.cleanup as DispatcherStage;
      // No install may still be running while nodes are cleaned.
      await ensureInstallJobsGone(client, props, props.install?.ownerValue, deadline, log);
      const runId = newRunId(props.runKey, props.runId);
      const dispatch = () =>
        runDispatcherStage({
          client,
          namespace: props.namespace,
          stage,
          job: annotated(stage.job, runId, props.runKey),
          replacementJob: (nodes) =>
            annotated(replacementDispatcherJob(stage.job, nodes), runId, props.runKey),
          runKey: props.runKey,
          deadline,
          timeoutSeconds: props.timeoutSeconds,
          stuckGraceSeconds: stuckGrace(props),
          log,
          label: label(props, "cleanup"),
          signal,
        });
      const { run, phase } = await runPhase(client, props, "pre-delete", stage.job, dispatch, deadline, log);
      if (!run)
        throw new Error(hookFailureMessage(label(props, "cleanup"), phase) ?? "internal: no cleanup run");
      const summary = summarize(run.results, Math.round((run.finishedAt - run.startedAt) / 1000));
      const message = withNotes(
        finalMessage(label(props, "cleanup"), summary, run.results, {
          timedOut: run.timedOut,
          dispatcherFailure: run.dispatcherFailure,
        }),
        run,
      );
      log(message);
      if (runFailed(run)) {
        throw new Error(
          `${message}. Kata is still on those nodes. Fix them and destroy again, or skip the cleanup: set ` +
            `cleanupOnDestroy=false and run \`pulumi up\` first, or run the destroy with KATA_DEPLOY_SKIP_CLEANUP=1`,
        );
      }
      const failure = hookFailureMessage(label(props, "cleanup"), phase);
      if (failure) throw new Error(failure);
      // hook-succeeded: the phase deleted the cleanup dispatcher Job; inputs of earlier versions carry no hooks.
      if (!props.hooks)
        await client.delete(jobsPath(props.namespace, stage.job.metadata?.name ?? ""), "Background");
      // Its per-node Jobs go with it (they name it as owner); waited for here so nothing of the release is left.
      await deleteAndWaitGone(
        client,
        jobsPath(props.namespace),
        { labelSelector: `${OWNER_LABEL}=${stage.ownerValue}` },
        deadline,
        "per-node cleanup Jobs",
        "Background",
      );
    } finally {
      client.close();
    }
  },
} satisfies dynamic.ResourceProvider<RolloutInputs, RolloutOutputs>;
