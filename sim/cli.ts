// Standalone kube-sim: `npm run sim -- <fleet options> [--port P] [--authz]`. The first stdout line is
// `kubeconfig: <path>`; serves until SIGINT/SIGTERM.
import { Command, InvalidArgumentError } from "commander";
import { runCommand } from "../stdio/exit";
import { startSimulator } from "./index";

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

function positive(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n > 0)) throw new InvalidArgumentError(`${name} must be a number > 0, got "${value}"`);
    return n;
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1))
    throw new InvalidArgumentError(`--fail-rate must be between 0 and 1, got "${value}"`);
  return n;
}

/** Serves until SIGINT or SIGTERM, then closes the simulator; resolves to the exit code. */
async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name("kube-sim")
    .description("In-process Kubernetes API simulator (see sim/README.md)")
    .option("--nodes <n>", "generated fleet size", integer("--nodes", 0), 0)
    .option("--seed <s>", "seed for the fleet and faults", integer("--seed", 0), 1)
    .option("--control-plane <k>", "control-plane nodes", integer("--control-plane", 0), 0)
    .option("--tainted <t>", "workers tainted dedicated=gpu:NoSchedule", integer("--tainted", 0), 0)
    .option("--fail-rate <r>", "fraction of nodes whose pods always fail", fraction, 0)
    .option(
      "--job-duration-ms <d>",
      "simulated duration of one pod run",
      positive("--job-duration-ms"),
      120_000,
    )
    .option("--time-scale <x>", "simulated ms per real ms", positive("--time-scale"), 1)
    .option("--fleet <file>", "JSON fleet file (replaces the generated fleet)")
    .option("--port <p>", "TCP port on 127.0.0.1 (0 = random)", integer("--port", 0), 0)
    .option("--authz", "enforce RBAC for ServiceAccount tokens", false)
    .option(
      "--execute-image <image>",
      "run pods of this container image as real Node.js processes (repeatable; e.g. the bundled dispatcher's)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .exitOverride()
    .parse(argv);
  const o = program.opts<{
    nodes: number;
    seed: number;
    controlPlane: number;
    tainted: number;
    failRate: number;
    jobDurationMs: number;
    timeScale: number;
    fleet?: string;
    port: number;
    authz: boolean;
    executeImage: string[];
  }>();
  const { executeImage, ...fleet } = o;
  const sim = await startSimulator({
    ...fleet,
    execute: executeImage.length > 0 ? { nodeImages: executeImage } : undefined,
  });
  process.stdout.write(`kubeconfig: ${sim.kubeconfigPath}\n`);
  process.stdout.write(
    `server: ${sim.url}\nca: ${sim.caPath}\naudit: curl --cacert ${sim.caPath} ${sim.url}/_sim/audit/request-counts\n`,
  );
  const signal = await new Promise<string>((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => resolve(s));
  });
  process.stderr.write(`kube-sim: ${signal}, closing\n`);
  await sim.close();
  return 0;
}

runCommand("kube-sim", () => main(process.argv), 1);
