// `npm start`: a real KataDeploy rollout on the embedded simulated cluster (or, with --kubeconfig, on a real
// one): the component's plan, the objects `pulumi up` applies, the dispatcher Job really executed, the
// rollout's waiter, a live progress display, then a short summary, with the full results written to files.
// `--destroy` (with --kubeconfig) uninstalls the same release as `pulumi destroy` does (main/uninstall.ts).
// Exit codes: 0 every targeted node succeeded (or the uninstall left nothing); 1 the rollout failed (a node failed,
// or the rollout as a whole: the summary says why), or a step of the uninstall failed; 2 a bad option or input
// file; 3 the rollout could not run (e.g. cluster unreachable).
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { DispatcherImplementation } from "../components/args";
import { ArgsFileError, readArgsFile } from "../components/argsFile";
import { DEFAULT_RESOURCE_NAME, planKataDeploy, type Plan } from "../components/plan";
import { assemble, rolloutInputsOf } from "../components/assemble";
import { needsBundle } from "../components/rolloutObjects";
import { KataDeployArgsError } from "../components/validation";
import { buildDispatcherBundle } from "../dispatcher/bundle";
import type { NodeResult } from "../kube/jobStatus";
import { kataNodesNow } from "../rollout/aggregate";
import { decodeResults } from "../rollout/compact";
import { withInstallPlan } from "../rollout/installPlan";
import { rolloutProvider } from "../rollout/provider";
import { ConnectionResolutionError } from "../rollout/resolveConnection";
import type { RolloutOutputs } from "../rollout/types";
import { FleetFileError } from "../sim";
import { EXIT_USAGE, runCommand, UsageError } from "../stdio/exit";
import { composeArgs, type ArgOption } from "./args";
import { applyObjects, realCluster, startSimulatedCluster, type Target } from "./cluster";
import { renderProfileSvg } from "./profile";
import { eligibleNodes, observeDaemonPods, observeJobs, showProgress } from "./progress";
import { resultsTable, stackOutputs, summaryText } from "./report";
import { uninstall, uninstallText } from "./uninstall";

/** The largest simulated fleet: the benchmark's biggest (100,000 nodes) fits in about 2 GiB. */
export const MAX_SIMULATED_NODES = 100_000;
export const EXIT_FAILED = 1;
/** Node names the plan line names per reason (the rest counted): one line a person reads. */
const DEMO_PLAN_NAMES = 5;
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
  destroy?: boolean;
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
    .option(
      "--destroy",
      "with --kubeconfig: uninstall the release these options plan, as `pulumi destroy` does (cleanup, post-delete hooks)",
    )
    .exitOverride();
  program.parse(argv, { from: "user" });
  const explicit = (name: string) => program.getOptionValueSource(name) === "cli";
  return { options: program.opts<Options>(), explicit };
}

/** Status lines go to stderr: stdout holds only the results (the summary, or the JSON with --json). */
function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    say("refusing to change a real cluster without confirmation: run interactively, or pass --yes");
    return false;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} Type "yes" to go on: `);
  rl.close();
  return answer.trim() === "yes";
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
  if (o.destroy && planned.kubeconfig === undefined)
    throw new UsageError(
      "--destroy: give --kubeconfig (or kubeconfig in --args): it uninstalls a release from a real cluster, and the simulated cluster starts empty",
    );
  if (o.destroy && explicit("out"))
    throw new UsageError("--out: not with --destroy (an uninstall writes no result files)");

  const target = await startTarget(o, explicit, planned.kubeconfig);
  try {
    say(`kata-deploy: ${mode} mode on ${target.describe}`);
    const question = o.destroy
      ? `Uninstall Kata Containers (release ${plan.args.namespace}/${plan.args.releaseName}) from ${target.describe}?`
      : `Install Kata Containers on ${target.describe}?`;
    if (planned.kubeconfig !== undefined && !o.yes && !(await confirm(question))) return EXIT_USAGE;

    // What `pulumi up` creates before the rollout: the namespace, the chart's objects (helm.v4.Chart), and the
    // component's dispatcher script ConfigMap and reader Role; the same assembly as the component's.
    const assembly = assemble(plan, {
      bundle: needsBundle(plan) ? await buildDispatcherBundle() : undefined,
    });
    const { release } = assembly;
    if (o.destroy) {
      const summary = await uninstall({
        target,
        assembly,
        inputs: rolloutInputsOf(plan, assembly, target.connection),
        showProgress: !o.json,
      });
      process.stdout.write(
        o.json ? `${JSON.stringify(summary, null, 2)}\n` : `\n${uninstallText(summary)}\n`,
      );
      if (summary.failure)
        say(`\nthe uninstall failed at the ${summary.failure.step} step: ${summary.failure.message}`);
      if (summary.failure || summary.stillPresent?.length) return EXIT_FAILED;
      return summary.nothingFound || summary.stillPresent ? 0 : EXIT_CANNOT_RUN;
    }
    const applied = await applyObjects(target.kubeConfig, assembly.objects);
    const unserved = applied.skipped.length
      ? `; ${applied.skipped.length} of kinds not served here skipped`
      : "";
    say(`applied ${applied.applied.length} objects${unserved}`);

    // What `pulumi preview` would show: which nodes this run installs, read from their records (job mode, bundled).
    const { inputs, report } = await withInstallPlan(
      rolloutInputsOf(plan, assembly, target.connection),
      `kata-deploy ${release.namespace}/${release.name}`,
      DEMO_PLAN_NAMES,
    );
    if (report) say(report.line);
    // The progress counts the per-node Jobs: with a plan, only the planned nodes get one (a rerunToken forces all).
    const planInstalls = inputs.plan?.install;
    const total =
      planInstalls !== undefined && !inputs.rerunToken
        ? planInstalls
        : await eligibleNodes(target.kubeConfig, inputs, "install");
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
      outs = (await rolloutProvider.create(inputs)).outs;
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
    const what = o.destroy ? "the uninstall" : "the rollout";
    say(`kata-deploy: ${what} could not run: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_CANNOT_RUN;
  } finally {
    await target.close();
  }
}

if (require.main === module) runCommand("kata-deploy", () => main(process.argv.slice(2)), EXIT_CANNOT_RUN);
