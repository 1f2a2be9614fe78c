// `npm run plan [-- --args FILE] [--name NAME]`: prints what a KataDeploy would do, as YAML. FILE holds
// exactly the component's args (YAML or JSON), the shape the stack program reads from stack config.
// Invalid args: every error with its path and fix on stderr, exit code 2, nothing on stdout.
import * as fs from "node:fs";
import { Command, CommanderError } from "commander";
import { parse, stringify } from "yaml";
import { DEFAULT_RESOURCE_NAME, planKataDeploy } from "./plan";
import { KataDeployArgsError } from "./validation";

export const EXIT_INVALID = 2;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

function readArgsFile(file: string): unknown {
  const text = fs.readFileSync(file, "utf8");
  // YAML is a superset of JSON: one parser reads both.
  const doc = parse(text) as unknown;
  return doc ?? {};
}

/** Runs the command; returns the exit code (0 planned, 2 invalid input). */
export function runPlanCli(argv: readonly string[], io: CliIo = processIo): number {
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
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_INVALID;
    throw e;
  }
  const opts = program.opts<{ args?: string; name: string }>();

  let args: unknown = {};
  if (opts.args !== undefined) {
    try {
      args = readArgsFile(opts.args);
    } catch (e) {
      io.stderr(`error: --args ${opts.args}: ${(e as Error).message}\n`);
      return EXIT_INVALID;
    }
  }
  try {
    const plan = planKataDeploy(args, opts.name);
    const { warnings, ...rest } = plan;
    io.stdout(stringify(warnings.length > 0 ? { ...rest, warnings } : rest, { lineWidth: 0 }));
    return 0;
  } catch (e) {
    if (e instanceof KataDeployArgsError) {
      for (const issue of e.issues) io.stderr(`error: ${issue.path}: ${issue.message}\n`);
      return EXIT_INVALID;
    }
    throw e;
  }
}

if (require.main === module) {
  process.exitCode = runPlanCli(process.argv.slice(2));
}
