// `npm start`: a real KataDeploy rollout on the embedded simulated cluster (or, with --kubeconfig, on a real
// one): the component's plan, the objects `pulumi up` applies, the dispatcher Job really executed, the
// rollout's waiter, a live progress display, then a short summary, with the full results written to files.
// Exit codes: 0 every targeted node succeeded; 1 the rollout failed (a node failed, or the rollout as a whole:
// the summary says why); 2 a bad option or input file; 3 the rollout could not run (e.g. cluster unreachable).
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import * as tty from "node:tty";
import * as k8s from "@kubernetes/client-node";
import { SingleBar } from "cli-progress";
import { Command, InvalidArgumentError, Option } from "commander";
import { DispatcherImplementation } from "../components/args";
import { ArgsFileError, readArgsFile } from "../components/argsFile";
import { DEFAULT_RESOURCE_NAME, planKataDeploy, type Plan } from "../components/plan";
import { assemble, rolloutInputsOf } from "../components/assemble";
import { needsBundle } from "../components/rolloutObjects";
import { KataDeployArgsError } from "../components/validation";
import type { NodeLike } from "../dispatcher/admission";
import { buildDispatcherBundle } from "../dispatcher/bundle";
import { admitSelected, selectionQueries, type NodeSelection } from "../kube/nodeSelection";
import { DAEMONSET_AUTOMATIC_TOLERATIONS, type Toleration } from "../kube/tolerations";
import type { NodeResult } from "../kube/jobStatus";
import { kataNodesNow } from "../rollout/aggregate";
import { decodeResults } from "../rollout/compact";
import { rolloutProvider } from "../rollout/provider";
import { ConnectionResolutionError } from "../rollout/resolveConnection";
import type { RolloutInputs, RolloutOutputs } from "../rollout/types";
import { FleetFileError } from "../sim";
import { EXIT_USAGE, runCommand, UsageError } from "../stdio/exit";
import { composeArgs, type ArgOption } from "./args";
import { applyObjects, realCluster, startSimulatedCluster, type Target } from "./cluster";
import { renderProfileSvg } from "./profile";
import { eta, formatSeconds, observeDaemonPods, observeJobs, type Observer } from "./progress";
import { resultsTable, stackOutputs, summaryText } from "./report";

/** The largest simulated fleet: the benchmark's biggest (100,000 nodes) fits in about 2 GiB. */
export const MAX_SIMULATED_NODES = 100_000;
export const EXIT_FAILED = 1;
export const EXIT_CANNOT_RUN = 3;

/** The files a run writes into `--out`. */
export const OUTPUT_FILES = {
  table: "node-results.txt",
  outputs: "stack-outputs.json",
  profile: "rollout-profile.svg",
} as const;

interface Options {
  nodes: number;
  parallelism: number;
  failRate: number;
  failOnce: number;
  seed: number;
  mode: "job" | "daemonset";
  timeScale: number;
  fleet?: string;
  args?: string;
  json?: boolean;
  kubeconfig?: string;
  yes?: boolean;
  keep?: boolean;
  namespace: string;
  out: string;
}

function number(min: number, max: number, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(
        `expected ${integer ? "a whole number" : "a number"} from ${min} to ${max.toLocaleString("en-US")}`,
      );
    return n;
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n <= 1))
    throw new InvalidArgumentError("expected a fraction from 0 to 1");
  return n;
}

/** Options that describe the simulated fleet: meaningless with a real cluster. */
const SIMULATOR_OPTIONS = ["nodes", "failRate", "failOnce", "seed", "timeScale", "fleet", "keep"] as const;

function parseOptions(argv: string[]): { options: Options; explicit: (name: string) => boolean } {
  const program = new Command("npm start --")
    .description(
      "Run a KataDeploy rollout on the embedded simulated cluster (default) or on a real one (--kubeconfig).",
    )
    .option("--args <file>", "the component's args, YAML or JSON (the file `npm run plan --args` reads)")
    .option("--nodes <n>", "simulated fleet size", number(1, MAX_SIMULATED_NODES, true), 200)
    .option(
      "--parallelism <p>",
      "job.parallelism: per-node Jobs in flight",
      number(1, MAX_SIMULATED_NODES, true),
      20,
    )
    .option("--fail-rate <r>", "fraction of simulated nodes whose install always fails", fraction, 0)
    .option(
      "--fail-once <n>",
      "simulated workers whose first install attempt fails",
      number(0, MAX_SIMULATED_NODES, true),
      5,
    )
    .option("--seed <s>", "simulator seed", number(0, Number.MAX_SAFE_INTEGER, true), 1)
    .addOption(new Option("--mode <mode>", "deploymentMode").choices(["job", "daemonset"]).default("job"))
    .option(
      "--time-scale <x>",
      "simulated ms per real ms (a 2-minute Job takes 120000/x ms)",
      number(1, 1_000_000, false),
      100,
    )
    .option(
      "--fleet <file>",
      "a fleet file (the simulator's JSON format, see sim/README.md) instead of a generated fleet",
    )
    .option("--namespace <ns>", "release namespace", "kata-system")
    .option(
      "--out <dir>",
      "where to write the per-node table, the stack outputs and the rollout picture",
      "kata-rollout",
    )
    .option("--json", "print only the final stack outputs on stdout, as JSON")
    .option("--keep", "keep the simulated cluster running after the rollout, to look at it (Ctrl-C ends it)")
    .option(
      "--kubeconfig <kubeconfig>",
      "run against this real cluster: a kubeconfig file, its YAML, or base64 of it",
    )
    .option("--yes", "with --kubeconfig: do not ask for confirmation")
    .exitOverride();
  program.parse(argv, { from: "user" });
  const explicit = (name: string) => program.getOptionValueSource(name) === "cli";
  return { options: program.opts<Options>(), explicit };
}

/** Status lines go to stderr: stdout holds only the results (the summary, or the JSON with --json). */
function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

async function confirm(target: Target): Promise<boolean> {
  if (!process.stdin.isTTY) {
    say("refusing to change a real cluster without confirmation: run interactively, or pass --yes");
    return false;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`Install Kata Containers on ${target.describe}? Type "yes" to go on: `);
  rl.close();
  return answer.trim() === "yes";
}

/** The nodes the rollout will work on, as the dispatcher (or the DaemonSet controller) admits them. */
async function eligibleNodes(kc: k8s.KubeConfig, inputs: RolloutInputs): Promise<number> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list = async (labelSelector?: string): Promise<NodeLike[]> => {
    const out: NodeLike[] = [];
    let token: string | undefined;
    do {
      const page = await core.listNode({ labelSelector, limit: 500, _continue: token });
      out.push(...(page.items as NodeLike[]));
      token = page.metadata?._continue || undefined;
    } while (token);
    return out;
  };
  let selection: NodeSelection;
  let tolerations: Toleration[];
  if (inputs.mode === "daemonset") {
    const ds = inputs.daemonSet;
    const selector = Object.entries(ds?.nodeSelector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    selection = selector ? { selectors: [selector] } : {};
    tolerations = ds?.tolerations ?? [];
  } else if (inputs.install) {
    selection = inputs.install.selection;
    tolerations = inputs.install.tolerations ?? [];
  } else return 0;
  // As the dispatcher and the DaemonSet controller will: names win, else the union of the selectors; then taints.
  const listed = await Promise.all(selectionQueries(selection).map((s) => list(s)));
  return admitSelected(listed, selection, [...tolerations, ...DAEMONSET_AUTOMATIC_TOLERATIONS]).admitted
    .length;
}

/**
 * On a terminal, the progress line is redrawn in place. The rollout's own log lines (the provider writes them
 * to stderr, as it does under the Pulumi engine) would be appended to the bar's line: while the bar is shown,
 * each of them first clears that line, and the bar draws through its own stream so it is not affected.
 */
function clearBarLineBeforeEachWrite(): () => void {
  const original = process.stderr.write;
  process.stderr.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const text = typeof chunk === "string" ? `\r\x1b[2K${chunk}` : chunk;
    return (original as (...a: unknown[]) => boolean).call(this, text, ...rest);
  } as typeof process.stderr.write;
  return () => {
    process.stderr.write = original;
  };
}

function showProgress(observer: Observer, show: boolean): () => void {
  if (!show) return () => undefined;
  const started = Date.now();
  const total = observer.counts().total;
  const onTerminal = process.stderr.isTTY;
  const bar = new SingleBar({
    format:
      "{bar} {done}/{total} nodes done, {failed} failed, {inFlight} in flight | {elapsed} elapsed, ETA {remaining}",
    stream: onTerminal ? new tty.WriteStream(2) : process.stderr,
    hideCursor: true,
    barsize: 30,
    noTTYOutput: true,
    notTTYSchedule: 2000,
  });
  const values = () => {
    const c = observer.counts();
    const remaining = eta(c, Date.now() - started);
    return {
      done: c.done,
      failed: c.failed,
      inFlight: c.inFlight,
      elapsed: formatSeconds((Date.now() - started) / 1000),
      remaining: remaining === undefined ? "-" : formatSeconds(remaining),
    };
  };
  const restoreStderr = onTerminal ? clearBarLineBeforeEachWrite() : () => undefined;
  bar.start(total, 0, values());
  const timer = setInterval(() => bar.update(observer.counts().done, values()), 200);
  return () => {
    clearInterval(timer);
    bar.update(observer.counts().done, values());
    bar.stop();
    restoreStderr();
  };
}

/** The command line options that set component args, the mode's first (it decides whether job.* apply). */
function argOptions(o: Options, explicit: (name: string) => boolean): ArgOption[] {
  return [
    { flag: "--mode", path: ["deploymentMode"], value: o.mode, explicit: explicit("mode") },
    { flag: "--namespace", path: ["namespace"], value: o.namespace, explicit: explicit("namespace") },
    {
      flag: "--parallelism",
      path: ["job", "parallelism"],
      value: o.parallelism,
      explicit: explicit("parallelism"),
    },
    { flag: "--kubeconfig", path: ["kubeconfig"], value: o.kubeconfig, explicit: explicit("kubeconfig") },
  ].filter((a) => a.value !== undefined);
}

/** The plan of the args from --args and the options; undefined (after printing why) when they are invalid. */
function planFromOptions(
  o: Options,
  explicit: (name: string) => boolean,
): { plan: Plan; kubeconfig?: string } | undefined {
  let fileArgs: unknown = {};
  if (o.args !== undefined) {
    try {
      fileArgs = readArgsFile(o.args);
    } catch (e) {
      if (e instanceof ArgsFileError) throw new UsageError(`--args ${o.args}: ${e.message}`);
      throw e;
    }
  }
  const args = composeArgs(fileArgs, argOptions(o, explicit), o.args);
  try {
    const plan = planKataDeploy(args, DEFAULT_RESOURCE_NAME);
    return { plan, kubeconfig: args.kubeconfig as string | undefined };
  } catch (e) {
    if (!(e instanceof KataDeployArgsError)) throw e;
    for (const issue of e.issues) say(`error: ${issue.path}: ${issue.message}`);
    return undefined;
  }
}

async function startTarget(
  o: Options,
  explicit: (name: string) => boolean,
  kubeconfig?: string,
): Promise<Target> {
  if (kubeconfig !== undefined) {
    const simulatorOnly = SIMULATOR_OPTIONS.filter(explicit);
    if (simulatorOnly.length > 0)
      throw new UsageError(
        `${simulatorOnly.map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(", ")}: for the simulated cluster only, not with a kubeconfig`,
      );
    try {
      return realCluster(kubeconfig);
    } catch (e) {
      if (e instanceof ConnectionResolutionError) throw new UsageError(e.message);
      throw e;
    }
  }
  try {
    return await startSimulatedCluster({
      nodes: o.nodes,
      seed: o.seed,
      controlPlane: 3,
      tainted: 3,
      failRate: o.failRate,
      failOnce: o.fleet ? 0 : o.failOnce,
      timeScale: o.timeScale,
      jobDurationMs: 120_000,
      fleet: o.fleet,
    });
  } catch (e) {
    if (e instanceof FleetFileError) throw new UsageError(`--fleet: ${e.message}`);
    throw e;
  }
}

/** Writes one result file; a failure is a warning (the results were printed already), not a lost run. */
function writeOutput(file: string, content: () => string): string | undefined {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content());
    return file;
  } catch (e) {
    say(`warning: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
}

/** Ends when the user presses Ctrl-C (SIGINT) or the process is asked to stop (SIGTERM). */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}

/**
 * The command, without the process around it: resolves to the exit code; throws a UsageError or a commander
 * error for a bad option or file (exit 2 through runCommand).
 */
export async function main(argv: string[]): Promise<number> {
  const { options: o, explicit } = parseOptions(argv);
  const planned = planFromOptions(o, explicit);
  if (!planned) return EXIT_USAGE;
  const { plan } = planned;
  for (const w of plan.warnings) say(`warning: ${w.path}: ${w.message}`);
  const mode = plan.args.deploymentMode;
  const implementation = plan.args.dispatcherImplementation;
  if (planned.kubeconfig === undefined && implementation === DispatcherImplementation.Upstream)
    throw new UsageError(
      `dispatcherImplementation: ${implementation} needs a real cluster (--kubeconfig): the simulator runs the bundled dispatcher only`,
    );

  const target = await startTarget(o, explicit, planned.kubeconfig);
  try {
    say(`kata-deploy: ${mode} mode on ${target.describe}`);
    if (planned.kubeconfig !== undefined && !o.yes && !(await confirm(target))) return EXIT_USAGE;

    // What `pulumi up` creates before the rollout: the namespace, the chart's objects (helm.v4.Chart), and the
    // component's dispatcher script ConfigMap and reader Role; the same assembly as the component's.
    const assembly = assemble(plan, {
      bundle: needsBundle(plan) ? await buildDispatcherBundle() : undefined,
    });
    const { release } = assembly;
    const applied = await applyObjects(target.kubeConfig, assembly.objects);
    const unserved = applied.skipped.length
      ? `; ${applied.skipped.length} of kinds not served here skipped`
      : "";
    say(`applied ${applied.applied.length} objects${unserved}`);

    const inputs = rolloutInputsOf(plan, assembly, target.connection);
    const total = await eligibleNodes(target.kubeConfig, inputs);
    const observer =
      inputs.mode === "job"
        ? await observeJobs(target.kubeConfig, release.namespace, inputs.install?.ownerValue ?? "", total)
        : await observeDaemonPods(
            target.kubeConfig,
            release.namespace,
            inputs.daemonSet?.podSelector ?? {},
            total,
          );
    const stopProgress = showProgress(observer, !o.json);

    // The rollout resource's create, called in-process (tests/provider runs it through Pulumi's provider hosts).
    let outs: RolloutOutputs;
    let failure: string | undefined;
    try {
      outs = (await rolloutProvider.create(inputs)).outs as RolloutOutputs;
    } catch (err) {
      const e = err as { message?: string; properties?: RolloutOutputs };
      if (!e.properties) throw err;
      outs = e.properties;
      failure = e.message;
    } finally {
      stopProgress();
      await observer.stop();
    }

    // The results first; the files after, each a warning when it cannot be written.
    const results: NodeResult[] = decodeResults(outs.results);
    const outputs = stackOutputs(plan, results, outs, kataNodesNow(results, outs.kataCorrection));
    const parallelism = mode === "job" ? plan.args.job?.parallelism : undefined;
    if (o.json) process.stdout.write(`${JSON.stringify(outputs, null, 2)}\n`);
    else
      process.stdout.write(
        `\n${summaryText(results, outs.summary, `kata-deploy ${mode} mode, release ${release.namespace}/${release.name}, chart ${plan.chart.version ?? plan.chart.reference}, run ${outs.runId}`)}\n`,
      );
    if (failure) say(`\n${failure}`);

    const file = (name: string) => path.resolve(o.out, name);
    const written = {
      "per-node table": writeOutput(file(OUTPUT_FILES.table), () => `${resultsTable(results)}\n`),
      "stack outputs (pulumi stack output --json)": writeOutput(
        file(OUTPUT_FILES.outputs),
        () => `${JSON.stringify(outputs, null, 2)}\n`,
      ),
      "rollout picture": writeOutput(file(OUTPUT_FILES.profile), () =>
        renderProfileSvg({
          title: `kata-deploy ${mode} mode: ${total} nodes, parallelism ${parallelism ?? "n/a"}`,
          parallelism: parallelism ?? total,
          total,
          samples: observer.samples(),
        }),
      ),
    };
    const lines = Object.entries(written)
      .filter(([, where]) => where !== undefined)
      .map(([what, where]) => `  ${what}: ${where}`);
    if (lines.length > 0)
      (o.json ? say : (t: string) => process.stdout.write(`${t}\n`))(`\nFull results:\n${lines.join("\n")}`);

    const code = failure ? EXIT_FAILED : 0;
    if (o.keep && target.kubeconfigPath) {
      const keepLines = [
        "",
        "The simulated cluster keeps running; Ctrl-C ends it. Watch the per-node Jobs with:",
        `  kubectl --kubeconfig ${target.kubeconfigPath} get jobs -n ${release.namespace} -w`,
      ].join("\n");
      (o.json ? say : (t: string) => process.stdout.write(`${t}\n`))(keepLines);
      await untilInterrupted();
    }
    return code;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    say(`kata-deploy: the rollout could not run: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_CANNOT_RUN;
  } finally {
    await target.close();
  }
}

if (require.main === module) runCommand("kata-deploy", () => main(process.argv.slice(2)), EXIT_CANNOT_RUN);
