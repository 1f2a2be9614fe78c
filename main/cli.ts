// `npm start`: a real KataDeploy rollout on the embedded simulated cluster (or, with --kubeconfig, on a real
// one): the component's plan, the objects `pulumi up` applies, the dispatcher Job really executed, the
// rollout's waiter, a live progress display, then the per-node results and the exact stack outputs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import * as k8s from "@kubernetes/client-node";
import { SingleBar } from "cli-progress";
import { Command, InvalidArgumentError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { DeploymentMode, DispatcherImplementation } from "../components/args";
import { renderChart, type Release } from "../components/chart/render";
import { planKataDeploy } from "../components/plan";
import { bundleRefOf, dispatcherExtras } from "../components/rolloutObjects";
import { KataDeployArgsError } from "../components/validation";
import { admitNodes, effectiveTolerations, type NodeLike } from "../dispatcher/admission";
import { buildDispatcherBundle } from "../dispatcher/bundle";
import { DAEMONSET_AUTOMATIC_TOLERATIONS } from "../kube/tolerations";
import { buildRolloutInputs, resolveConnection } from "../rollout";
import { kataNodes } from "../rollout/aggregate";
import { decodeResults } from "../rollout/compact";
import { rolloutProvider } from "../rollout/provider";
import type { RolloutInputs, RolloutOutputs } from "../rollout/types";
import { runCommand } from "../stdio/exit";
import { applyObjects, realCluster, startSimulatedCluster, type Target } from "./cluster";
import { renderProfileSvg } from "./profile";
import { eta, formatSeconds, observeDaemonPods, observeJobs, type Observer } from "./progress";
import { resultsTable, stackOutputs } from "./report";

interface Options {
  nodes: number;
  parallelism: number;
  failRate: number;
  failOnce: number;
  seed: number;
  mode: "job" | "daemonset";
  timeScale: number;
  fleet?: string;
  json?: boolean;
  kubeconfig?: string;
  yes?: boolean;
  namespace: string;
  profile: string;
}

function number(min: number, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(
        `expected ${integer ? "a whole number" : "a number"} of at least ${min}`,
      );
    return n;
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError("expected a fraction between 0 and 1");
  return n;
}

function parseOptions(argv: string[]): Options {
  const program = new Command("npm start --")
    .description(
      "Run a KataDeploy rollout on the embedded simulated cluster (default) or on a real one (--kubeconfig).",
    )
    .option("--nodes <n>", "simulated fleet size", number(1, true), 200)
    .option("--parallelism <p>", "job.parallelism: per-node Jobs in flight", number(1, true), 20)
    .option("--fail-rate <r>", "fraction of simulated nodes whose install always fails", fraction, 0)
    .option("--fail-once <n>", "simulated workers whose first install attempt fails", number(0, true), 5)
    .option("--seed <s>", "simulator seed", number(0, true), 1)
    .addOption(new Option("--mode <mode>", "deployment mode").choices(["job", "daemonset"]).default("job"))
    .option(
      "--time-scale <x>",
      "simulated ms per real ms (a 2-minute Job takes 120000/x ms)",
      number(1, false),
      100,
    )
    .option(
      "--fleet <file>",
      "a fleet file (the simulator's JSON format, see sim/README.md) instead of a generated fleet",
    )
    .option("--namespace <ns>", "release namespace", "kata-system")
    .option(
      "--profile <file>",
      "where to write the rollout profile picture (SVG)",
      "kata-rollout-profile.svg",
    )
    .option("--json", "print only the final stack outputs, as JSON")
    .option("--kubeconfig <file>", "run against this real cluster instead of the simulator")
    .option("--yes", "with --kubeconfig: do not ask for confirmation");
  program.parse(argv, { from: "user" });
  return program.opts<Options>();
}

/** Stderr lines unless --json asked for a machine-readable stdout only (stderr stays human either way). */
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
async function eligibleNodes(kubeconfigPath: string, inputs: RolloutInputs): Promise<number> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
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
  if (inputs.mode === "daemonset") {
    const ds = inputs.daemonSet;
    const selector = Object.entries(ds?.nodeSelector ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const nodes = await list(selector || undefined);
    return admitNodes(nodes, [...(ds?.tolerations ?? []), ...DAEMONSET_AUTOMATIC_TOLERATIONS], false).admitted
      .length;
  }
  const stage = inputs.install;
  if (!stage) return 0;
  if (stage.selection.nodes?.length) return new Set(stage.selection.nodes).size;
  const selectors = stage.selection.selectors?.length ? stage.selection.selectors : [undefined];
  const nodes = (await Promise.all(selectors.map((s) => list(s)))).flat();
  return admitNodes(nodes, effectiveTolerations(stage.tolerations ?? []), false).admitted.length;
}

function showProgress(observer: Observer, json: boolean): () => void {
  const started = Date.now();
  const total = observer.counts().total;
  const format =
    "{bar} {done}/{total} nodes done, {failed} failed, {inFlight} in flight | {elapsed} elapsed, ETA {remaining}";
  const bar = new SingleBar({
    format,
    stream: process.stderr,
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
  if (!json) bar.start(total, 0, values());
  const timer = setInterval(() => {
    if (!json) bar.update(observer.counts().done, values());
  }, 200);
  return () => {
    clearInterval(timer);
    if (!json) {
      bar.update(observer.counts().done, values());
      bar.stop();
    }
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const args = {
    deploymentMode: o.mode === "job" ? DeploymentMode.Job : DeploymentMode.Daemonset,
    namespace: o.namespace,
    createNamespace: true,
    releaseName: "kata-deploy",
    ...(o.mode === "job" ? { job: { parallelism: o.parallelism } } : {}),
    rollout: { timeoutSeconds: 3600 },
  };
  let plan;
  try {
    plan = planKataDeploy(args, "kata-deploy");
  } catch (e) {
    if (e instanceof KataDeployArgsError) {
      for (const issue of e.issues) say(`error: ${issue.path}: ${issue.message}`);
      return 2;
    }
    throw e;
  }
  for (const w of plan.warnings) say(`warning: ${w.path}: ${w.message}`);

  const target = o.kubeconfig
    ? realCluster(path.resolve(o.kubeconfig))
    : await startSimulatedCluster({
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
  try {
    say(`kata-deploy: ${o.mode} mode on ${target.describe}`);
    if (o.kubeconfig && !o.yes && !(await confirm(target))) return 2;

    // What `pulumi up` creates before the rollout: the namespace, the chart's objects (helm.v4.Chart), and the
    // component's dispatcher script ConfigMap and reader Role.
    const release: Release = {
      name: plan.args.releaseName as string,
      namespace: plan.args.namespace as string,
    };
    const rendered = renderChart(plan.values, release, { parseYaml });
    const bundle = await buildDispatcherBundle();
    const extras = dispatcherExtras(rendered.names, release, DispatcherImplementation.Bundled, bundle);
    const namespaceObject = { apiVersion: "v1", kind: "Namespace", metadata: { name: release.namespace } };
    const objects =
      rendered.mode === "job"
        ? [
            namespaceObject,
            ...rendered.resources,
            extras.scriptConfigMap!,
            extras.podReaderRole,
            extras.podReaderRoleBinding,
          ]
        : [namespaceObject, ...rendered.resources];
    const applied = await applyObjects(target.kubeconfigPath, objects);
    say(
      `applied ${applied.applied.length} objects${applied.skipped.length ? ` (not served here, skipped: ${applied.skipped.join(", ")})` : ""}`,
    );

    const inputs = buildRolloutInputs({
      namespace: release.namespace,
      releaseName: release.name,
      chart: { chart: plan.chart.reference, version: plan.chart.version },
      values: plan.values,
      rendered,
      connection: resolveConnection({ kubeconfig: target.kubeconfigPath }),
      dispatcherImplementation: DispatcherImplementation.Bundled,
      bundle: bundleRefOf(bundle, rendered.names),
      rollout: { timeoutSeconds: 3600 },
    });
    const total = await eligibleNodes(target.kubeconfigPath, inputs);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(target.kubeconfigPath);
    const observer =
      inputs.mode === "job"
        ? await observeJobs(kc, release.namespace, inputs.install?.ownerValue ?? "", total)
        : await observeDaemonPods(kc, release.namespace, inputs.daemonSet?.podSelector ?? {}, total);
    const stopProgress = showProgress(observer, Boolean(o.json));

    // The rollout resource's create, exactly as the Pulumi engine calls it on `pulumi up`.
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

    const results = decodeResults(outs.results);
    const outputs = stackOutputs(plan, results, outs, kataNodes(results));
    fs.writeFileSync(
      o.profile,
      renderProfileSvg({
        title: `kata-deploy ${o.mode} mode: ${total} nodes, parallelism ${o.mode === "job" ? o.parallelism : "n/a"}`,
        parallelism: o.mode === "job" ? o.parallelism : total,
        total,
        samples: observer.samples(),
      }),
    );
    if (o.json) {
      process.stdout.write(`${JSON.stringify(outputs, null, 2)}\n`);
    } else {
      process.stdout.write(`\nPer-node results\n${resultsTable(results)}\n`);
      process.stdout.write(
        `\nStack outputs (pulumi stack output --json)\n${JSON.stringify(outputs, null, 2)}\n`,
      );
      say(`\nrollout profile: ${path.resolve(o.profile)}`);
    }
    if (failure) say(`\n${failure}`);
    else
      say(
        `\n${outs.summary.succeeded}/${outs.summary.total} nodes succeeded, ${outs.summary.skipped} skipped`,
      );
    return failure ? 1 : 0;
  } finally {
    await target.close();
  }
}

runCommand("kata-deploy", main, 1);
