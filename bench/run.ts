// `npm run bench`: rollout figures for our watch-driven dispatcher and for the upstream poll algorithm,
// side by side on the same simulator in the same run. The README's Benchmarks section says what each figure means.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Command, InvalidArgumentError } from "commander";
import { BUNDLED_DISPATCHER_NODE_OPTIONS, renderChart } from "../chart";
import { buildDispatcherBundle, writeBundle } from "../dispatcher/bundle";
import { clientNodeApi } from "../dispatcher/kubeApi";
import { ownerValue } from "../dispatcher/naming";
import { parseJobTemplate } from "../dispatcher/template";
import type { NodeResult } from "../kube/jobStatus";
import { summarize } from "../rollout/aggregate";
import { encodeResults } from "../rollout/compact";
import { startSimulator, type LatencyProbeApi } from "../sim";
import { runCommand, UsageError } from "../stdio/exit";
import { runChaosBench } from "./chaos";
import { runFigures, slotRefills, spread, type RunFigures, type Spread } from "./metrics";
import { runPollDispatcher } from "./pollDispatcher";
import { formatProfileSummary, summarizeCpuProfile } from "./profile";

type TrackingMode = "watch" | "poll";

interface BenchSettings {
  sizes: number[];
  parallelism: number;
  jobDurationMs: number;
  pollIntervalMs: number;
  timeScale: number;
  seed: number;
  /** Where the dispatcher process writes its V8 CPU profile (`--cpu-prof`), when asked. */
  cpuProfileDir?: string;
}

export interface BenchRun {
  nodes: number;
  mode: TrackingMode;
  makespanOverIdeal: number;
  requestsPerNode: number;
  /** Connections (TLS handshakes) the API server accepted during the run, per node. */
  connectionsPerNode: number;
  refillP50Ms: number;
  refillP99Ms: number;
  /** Dispatcher process peak RSS; null for the poll reproduction, which runs inside the benchmark process. */
  peakRssMiB: number | null;
  stateBytesPerNode: number;
  makespanMs: number;
  idealMs: number;
  jobDurationMs: number;
  peakActive: number;
  nodesWithOneSuccess: number;
  /** Nodes the dispatcher reported succeeded: short of nodesWithOneSuccess when it lost track of a Job. */
  nodesReportedSucceeded: number;
  wallSeconds: number;
  /** Real ms on the API server's side from a Job's end shown to the dispatcher to the create taking its slot. */
  reactionRealMs: Spread;
  /** Reaction p99 as a share of D in real ms (D / time scale): under 1% keeps makespan/ideal meaningful. */
  reactionP99OverD: number;
  cpu: CpuFigures;
}

/** CPU seconds and share of the dispatch's wall time (100% = one core). */
interface CpuFigures {
  wallSeconds: number;
  /** The benchmark process: the simulator, and for the poll reproduction the dispatcher too. */
  simulatorSeconds: number;
  simulatorPercent: number;
  /** The dispatcher child process (watch mode); null for the in-process poll reproduction. */
  dispatcherSeconds: number | null;
  dispatcherPercent: number | null;
}

/** What rssProbe.cjs writes when the dispatcher exits. */
interface ProbeFile {
  maxRssKiB: number;
  userUs: number;
  systemUs: number;
}

function reactionFigures(sim: { latency: LatencyProbeApi }, parallelism: number): Spread {
  const ms = slotRefills(sim.latency.jobCreatesArrived(), sim.latency.jobEndsShown(), parallelism);
  const s = spread(ms);
  return { p50: round(s.p50, 2), p99: round(s.p99, 2), max: round(s.max, 2), count: s.count };
}

function cpuFigures(simCpu: NodeJS.CpuUsage, wallMs: number, probe: ProbeFile | null): CpuFigures {
  const wallSeconds = wallMs / 1000;
  const share = (seconds: number) => round((100 * seconds) / Math.max(wallSeconds, 1e-9), 1);
  const simulatorSeconds = (simCpu.user + simCpu.system) / 1e6;
  const dispatcherSeconds = probe ? (probe.userUs + probe.systemUs) / 1e6 : null;
  return {
    wallSeconds: round(wallSeconds, 2),
    simulatorSeconds: round(simulatorSeconds, 2),
    simulatorPercent: share(simulatorSeconds),
    dispatcherSeconds: dispatcherSeconds === null ? null : round(dispatcherSeconds, 2),
    dispatcherPercent: dispatcherSeconds === null ? null : share(dispatcherSeconds),
  };
}

const NAMESPACE = "kube-system";
/** Upstream's JOB_READ_ERROR_BUDGET (dispatcher-reference.md §2.8), in simulated ms. */
const UPSTREAM_READ_ERROR_BUDGET_MS = 300_000;
const NAME_PREFIX = "kata-deploy-install";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return n;
}

function positiveIntList(value: string): number[] {
  return value.split(",").map((n) => positiveInt(n.trim()));
}

function stateBytesPerNode(results: NodeResult[], durationSeconds: number): number {
  // What the rollout resource keeps in the Pulumi state for these results (its compact encoding + summary).
  const state = JSON.stringify({
    results: encodeResults(results, ownerValue(NAME_PREFIX)),
    summary: summarize(results, durationSeconds),
  });
  return results.length > 0 ? Buffer.byteLength(state) / results.length : 0;
}

async function runOne(
  settings: BenchSettings,
  nodes: number,
  mode: TrackingMode,
  entry: string,
  workDir: string,
): Promise<BenchRun> {
  const sim = await startSimulator({
    nodes,
    seed: settings.seed,
    jobDurationMs: settings.jobDurationMs,
    timeScale: settings.timeScale,
    podStartDelayMs: 0,
    auditRequestLimit: 1000,
  });
  sim.latency.enable(ownerValue(NAME_PREFIX));
  const connectionsBefore = sim.connectionsOpened();
  const started = Date.now();
  try {
    // The per-node install Job exactly as chart 4.0.0 renders it in job mode.
    const rendered = renderChart({ deploymentMode: "job" }, { name: "kata-deploy", namespace: NAMESPACE });
    const templateText = JSON.stringify(rendered.jobTemplates?.install);
    const template = parseJobTemplate(templateText, "the chart's install-job.yaml");
    const templateFile = path.join(workDir, "install-job.json");
    fs.writeFileSync(templateFile, templateText);
    let results: NodeResult[];
    let peakRssMiB: number | null = null;
    let probe: ProbeFile | null = null;
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    if (mode === "watch") {
      const resultsFile = path.join(workDir, `results-${nodes}.json`);
      const rssFile = path.join(workDir, `rss-${nodes}`);
      const args = [
        // The Node.js options the bundled dispatcher Job runs with.
        ...BUNDLED_DISPATCHER_NODE_OPTIONS.split(" "),
        ...(settings.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${settings.cpuProfileDir}`] : []),
        "--require",
        path.join(__dirname, "rssProbe.cjs"),
        entry,
        `--job-template=${templateFile}`,
        `--name-prefix=${NAME_PREFIX}`,
        `--parallelism=${settings.parallelism}`,
        `--namespace=${NAMESPACE}`,
        `--results-file=${resultsFile}`,
      ];
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, args, {
          env: { ...process.env, KUBECONFIG: sim.kubeconfigPath, BENCH_RSS_FILE: rssFile },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderrTail = "";
        child.stderr.on("data", (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-2000)));
        child.on("error", reject);
        child.on("exit", (c) => {
          if (c !== 0) process.stderr.write(stderrTail);
          resolve(c);
        });
      });
      // Exit 1 is the dispatcher's "some nodes failed": the figures still stand, and the failures are named.
      if (code !== 0 && code !== 1) throw new Error(`the dispatcher exited ${code} on ${nodes} nodes`);
      if (settings.cpuProfileDir) printProfile(settings.cpuProfileDir, nodes);
      results = (JSON.parse(fs.readFileSync(resultsFile, "utf8")) as { nodes: NodeResult[] }).nodes;
      for (const r of results.filter((n) => n.outcome !== "succeeded").slice(0, 10))
        process.stderr.write(`bench: node ${r.node} ${r.outcome}: ${r.reason ?? ""} ${r.message ?? ""}\n`);
      probe = JSON.parse(fs.readFileSync(rssFile, "utf8")) as ProbeFile;
      peakRssMiB = probe.maxRssKiB / 1024;
    } else {
      const kc = new KubeConfig();
      kc.loadFromFile(sim.kubeconfigPath);
      results = await runPollDispatcher({
        api: clientNodeApi(kc),
        template,
        namePrefix: NAME_PREFIX,
        namespace: NAMESPACE,
        parallelism: settings.parallelism,
        pollIntervalMs: settings.pollIntervalMs / settings.timeScale,
        readErrorBudgetMs: UPSTREAM_READ_ERROR_BUDGET_MS / settings.timeScale,
      });
    }
    const cpu = cpuFigures(process.cpuUsage(cpuBefore), performance.now() - wallBefore, probe);
    const reaction = reactionFigures(sim, settings.parallelism);
    const totalRequests = Object.values(sim.audit.requestCounts()).reduce((a, b) => a + b, 0);
    const peakActive = sim.audit.peakActiveJobsByOwner()[ownerValue(NAME_PREFIX)] ?? 0;
    const figures: RunFigures = runFigures(
      sim.audit.jobsByNode(),
      totalRequests,
      nodes,
      settings.parallelism,
      peakActive,
    );
    return {
      nodes,
      mode,
      makespanOverIdeal: round(figures.makespanOverIdeal, 4),
      requestsPerNode: round(figures.requestsPerNode, 3),
      connectionsPerNode: round((sim.connectionsOpened() - connectionsBefore) / nodes, 3),
      refillP50Ms: round(figures.refillP50Ms, 1),
      refillP99Ms: round(figures.refillP99Ms, 1),
      peakRssMiB: peakRssMiB === null ? null : round(peakRssMiB, 1),
      stateBytesPerNode: round(stateBytesPerNode(results, figures.makespanMs / 1000), 1),
      makespanMs: figures.makespanMs,
      idealMs: figures.idealMs,
      jobDurationMs: figures.jobDurationMs,
      peakActive: figures.peakActive,
      nodesWithOneSuccess: figures.nodesWithOneSuccess,
      nodesReportedSucceeded: results.filter((r) => r.outcome === "succeeded").length,
      wallSeconds: round((Date.now() - started) / 1000, 1),
      reactionRealMs: reaction,
      reactionP99OverD: round(reaction.p99 / (settings.jobDurationMs / settings.timeScale), 4),
      cpu,
    };
  } finally {
    await sim.close();
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function reactionCell(s: Spread): string {
  return s.count === 0 ? "n/a" : `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} / ${s.max.toFixed(1)}`;
}

function cpuCell(seconds: number, percent: number): string {
  return `${seconds.toFixed(1)} (${percent.toFixed(0)}%)`;
}

function table(runs: BenchRun[]): string {
  const head = [
    "nodes",
    "mode",
    "makespan/ideal",
    "req/node",
    "conn/node",
    "refill p50 ms",
    "refill p99 ms",
    "reaction p50/p99/max real ms",
    "reaction p99 / D",
    "sim CPU s (%)",
    "dispatcher CPU s (%)",
    "peak RSS MiB",
    "state B/node",
    "peak active",
    "exactly-once",
    "reported ok",
    "wall s",
  ];
  const rows = runs.map((r) => [
    String(r.nodes),
    r.mode,
    r.makespanOverIdeal.toFixed(3),
    r.requestsPerNode.toFixed(2),
    r.connectionsPerNode.toFixed(3),
    r.refillP50Ms.toFixed(1),
    r.refillP99Ms.toFixed(1),
    reactionCell(r.reactionRealMs),
    `${(100 * r.reactionP99OverD).toFixed(1)}%`,
    cpuCell(r.cpu.simulatorSeconds, r.cpu.simulatorPercent),
    r.cpu.dispatcherSeconds === null
      ? "in sim"
      : cpuCell(r.cpu.dispatcherSeconds, r.cpu.dispatcherPercent ?? 0),
    r.peakRssMiB === null ? "n/a" : r.peakRssMiB.toFixed(1),
    r.stateBytesPerNode.toFixed(1),
    String(r.peakActive),
    `${r.nodesWithOneSuccess}/${r.nodes}`,
    `${r.nodesReportedSucceeded}/${r.nodes}`,
    r.wallSeconds.toFixed(1),
  ]);
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function ratios(runs: BenchRun[]): string[] {
  const out: string[] = [];
  for (const n of [...new Set(runs.map((r) => r.nodes))]) {
    const w = runs.find((r) => r.nodes === n && r.mode === "watch");
    const p = runs.find((r) => r.nodes === n && r.mode === "poll");
    if (!w || !p) continue;
    out.push(
      `${n} nodes: poll/watch makespan ${(p.makespanMs / w.makespanMs).toFixed(2)}x, requests ${(p.requestsPerNode / w.requestsPerNode).toFixed(1)}x, p99 refill ${(p.refillP99Ms / Math.max(w.refillP99Ms, 1e-9)).toFixed(1)}x`,
    );
  }
  return out;
}

async function main(): Promise<number> {
  const program = new Command("bench")
    .description("Rollout benchmark: watch-driven dispatcher vs the upstream poll algorithm on kube-sim")
    .option("--nodes <n>", "run one fleet size only", positiveInt)
    .option("--sizes <list>", "fleet sizes to run, comma-separated", positiveIntList, [1000, 10000, 100000])
    .option("--parallelism <p>", "per-node Jobs in flight", positiveInt, 100)
    .option("--job-duration-ms <d>", "simulated duration of one per-node Job (D)", positiveInt, 120_000)
    .option("--poll-interval-ms <i>", "simulated poll interval of the upstream algorithm", positiveInt, 5_000)
    // 24: D (120 s simulated) lasts 5 s real, so a reaction within its 50 ms target is within 1% of D.
    .option("--time-scale <x>", "simulated ms per real ms", positiveInt, 24)
    .option("--seed <s>", "simulator seed", positiveInt, 1)
    .option("--modes <list>", "tracking modes to run, comma-separated", "watch,poll")
    .option("--cpu-prof <dir>", "write the dispatcher's CPU profile into <dir> and print where its time goes")
    .option("--json", "print one JSON object instead of the table")
    .option("--out <file>", "where to write the results table", path.join(__dirname, "RESULTS.md"))
    .option("--no-write", "do not write the results table")
    .option("--chaos", "chaos runs instead: whole rollouts under seeded random faults (see bench/README.md)")
    .option("--runs <n>", "chaos: how many runs (seeds --seed, --seed+1, ...)", positiveInt, 20)
    .option("--seeds <list>", "chaos: exactly these seeds, comma-separated (replays runs)", positiveIntList)
    .option("--timeout-seconds <s>", "chaos: rollout timeout of each run, real seconds", positiveInt, 600)
    .exitOverride();
  program.parse();
  const o = program.opts<{
    nodes?: number;
    sizes: number[];
    parallelism: number;
    jobDurationMs: number;
    pollIntervalMs: number;
    timeScale: number;
    seed: number;
    modes: string;
    json?: boolean;
    out: string;
    write: boolean;
    chaos?: boolean;
    runs: number;
    seeds?: number[];
    timeoutSeconds: number;
    cpuProf?: string;
  }>();
  if (o.chaos) {
    return runChaosBench(
      {
        nodes: o.nodes ?? 1000,
        parallelism: o.parallelism,
        seeds: o.seeds ?? Array.from({ length: o.runs }, (_, i) => o.seed + i),
        // The chaos schedule's Job durations are set for 1000 simulated ms per real ms.
        timeScale: 1000,
        timeoutSeconds: o.timeoutSeconds,
      },
      (line) => process.stdout.write(`${line}\n`),
    );
  }
  const modes = o.modes.split(",").map((m) => m.trim()) as TrackingMode[];
  for (const m of modes) {
    if (m !== "watch" && m !== "poll") throw new UsageError(`--modes: unknown mode "${m}" (watch, poll)`);
  }
  const settings: BenchSettings = {
    sizes: o.nodes ? [o.nodes] : o.sizes,
    parallelism: o.parallelism,
    jobDurationMs: o.jobDurationMs,
    pollIntervalMs: o.pollIntervalMs,
    timeScale: o.timeScale,
    seed: o.seed,
    ...(o.cpuProf ? { cpuProfileDir: path.resolve(o.cpuProf) } : {}),
  };
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "kata-bench-"));
  const runs: BenchRun[] = [];
  try {
    const bundle = await buildDispatcherBundle();
    const entry = writeBundle(bundle, path.join(workDir, "dispatcher"));
    for (const nodes of settings.sizes) {
      for (const mode of modes) {
        process.stderr.write(`bench: ${nodes} nodes, ${mode} ...\n`);
        const run = await runOne(settings, nodes, mode, entry, workDir);
        process.stderr.write(
          // Every run's figures as soon as it ends: an interrupted long benchmark keeps what it measured.
          `bench: ${nodes} nodes, ${mode}: ${JSON.stringify(run)}\n`,
        );
        runs.push(run);
      }
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
  const report = {
    machine: machine(),
    date: new Date().toISOString(),
    command,
    settings,
    duration: durationNote(settings),
    runs,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${durationNote(settings)}\n\n${table(runs)}\n\n${ratios(runs).join("\n")}\n`);
  if (o.write) writeResults(o.out, report, runs);
  return 0;
}

/** The newest dispatcher profile in `dir`: where its CPU time went (stderr, so `--json` stays JSON). */
function printProfile(dir: string, nodes: number): void {
  const newest = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  if (!newest) {
    process.stderr.write(`bench: no .cpuprofile was written into ${dir}\n`);
    return;
  }
  const summary = summarizeCpuProfile(JSON.parse(fs.readFileSync(newest, "utf8")));
  process.stderr.write(`bench: dispatcher CPU profile, ${nodes} nodes (${newest})\n`);
  for (const line of formatProfileSummary(summary)) process.stderr.write(`bench: ${line}\n`);
}

/** D in real time and the reaction that is 1% of it: above that, makespan/ideal measures the dispatcher's lag too. */
function durationNote(s: BenchSettings): string {
  const realD = s.jobDurationMs / s.timeScale;
  return `D = ${s.jobDurationMs / 1000} s simulated at time scale ${s.timeScale} = ${realD.toFixed(0)} ms real; 1% of D = ${(realD / 100).toFixed(1)} ms real (reaction is real ms on the API server's side: a Job's end shown to the dispatcher → the create taking its slot)`;
}

function machine(): string {
  const cpus = os.cpus();
  return `${os.type()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

function writeResults(
  file: string,
  report: { machine: string; date: string; command: string; settings: BenchSettings },
  runs: BenchRun[],
): void {
  const s = report.settings;
  const text = [
    "# Benchmark results",
    "",
    `- machine: ${report.machine}`,
    `- date: ${report.date}`,
    `- command: \`${report.command}\``,
    `- settings: P = ${s.parallelism}, D = ${s.jobDurationMs / 1000} s simulated, upstream poll interval ${s.pollIntervalMs / 1000} s simulated, time scale ${s.timeScale} (simulated ms per real ms), seed ${s.seed}`,
    `- ${durationNote(s)}`,
    "",
    table(runs),
    "",
    ...ratios(runs).map((r) => `- ${r}`),
    "",
    "Targets (issue #16): reaction p99 <= 50 ms real at 1,000 and 10,000 nodes (P = 100); makespan/ideal <= 1.01 at 10,000; requests per node <= 2.0; dispatcher peak RSS <= 200 MiB at 100,000 nodes.",
    "",
  ].join("\n");
  fs.writeFileSync(file, text);
}

runCommand("bench", main, 1);
