// `npm run plan [-- --args FILE] [--name NAME]`: prints what a KataDeploy would do, as YAML. FILE holds
// exactly the component's args (YAML or JSON), the shape the stack program reads from stack config. In job mode
// it adds `rollout`: the dispatcher Jobs, the script ConfigMap (data summarized) and the reader Role/Binding.
// Invalid args: every error with its path and fix on stderr, exit code 2, nothing on stdout.
import { Command, CommanderError } from "commander";
import { stringify } from "yaml";
import { EXIT_USAGE, runCommand } from "../stdio/exit";
import { readArgsFile } from "./argsFile";
import { DEFAULT_RESOURCE_NAME, planChartObjects, planKataDeploy } from "./plan";
import { buildDispatcherBundle } from "../dispatcher/bundle";
import { assemble } from "./assemble";
import { needsBundle, plannedRollout } from "./rolloutObjects";
import { KataDeployArgsError } from "./validation";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** Runs the command; resolves to the exit code (0 planned, 2 invalid input). */
export async function runPlanCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = new Command()
    .name("plan")
    .description(
      "Print what KataDeploy would deploy: validated args with defaults, chart, exact chart values.",
    )
    .option("--args <file>", "YAML or JSON file with the component's args (default: no args, all defaults)")
    .option("--name <name>", "resource name (the default release name)", DEFAULT_RESOURCE_NAME)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  try {
    program.parse([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    throw e;
  }
  const opts = program.opts<{ args?: string; name: string }>();

  let args: unknown = {};
  if (opts.args !== undefined) {
    try {
      args = readArgsFile(opts.args);
    } catch (e) {
      io.stderr(`error: --args ${opts.args}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
  }
  try {
    const plan = planKataDeploy(args, opts.name);
    // The release rendered once; job mode adds the objects the rollout sends besides the chart (building the
    // bundled dispatcher is async).
    const assembly = assemble(plan, {
      bundle: needsBundle(plan) ? await buildDispatcherBundle() : undefined,
    });
    const rollout = plannedRollout(assembly);
    const { warnings, ...rest } = plan;
    const out: Record<string, unknown> = { ...rest, chartObjects: planChartObjects(plan, assembly) };
    if (rollout) out.rollout = rollout;
    if (warnings.length > 0) out.warnings = warnings;
    io.stdout(stringify(out, { lineWidth: 0 }));
    return 0;
  } catch (e) {
    if (e instanceof KataDeployArgsError) {
      for (const issue of e.issues) io.stderr(`error: ${issue.path}: ${issue.message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}

if (require.main === module) runCommand("error", () => runPlanCli(process.argv.slice(2)), 1);
