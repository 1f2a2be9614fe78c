// The component args `npm start` plans with: an `--args` file holds any of the component's arguments (the same
// file `npm run plan` reads); the demo's own defaults fill what the file leaves out; an option given on the
// command line that the file also sets is a conflict, refused rather than silently resolved. Pure.
import { DEFAULT_RESOURCE_NAME } from "../components/plan";
import { COMPONENT_DEFAULTS } from "../components/validation";
import { UsageError } from "../stdio/exit";

type Args = Record<string, unknown>;

/** A command line option that sets a component argument. */
export interface ArgOption {
  /** The option as the user types it, for messages: `--parallelism`. */
  flag: string;
  /** Where it goes in the args: `["job", "parallelism"]`. */
  path: string[];
  value: unknown;
  /** Given on the command line (not only the option's default). */
  explicit: boolean;
}

function isMap(v: unknown): v is Args {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function get(args: Args, path: string[]): unknown {
  let at: unknown = args;
  for (const key of path) at = isMap(at) ? at[key] : undefined;
  return at;
}

function set(args: Args, path: string[], value: unknown): Args {
  const [key, ...rest] = path;
  if (rest.length === 0) return { ...args, [key]: value };
  const inner = isMap(args[key]) ? args[key] : {};
  return { ...args, [key]: set(inner, rest, value) };
}

/** The demo's defaults for what neither the file nor the command line sets (a rollout may take an hour). */
export const DEMO_DEFAULTS: readonly { path: string[]; value: unknown }[] = [
  { path: ["createNamespace"], value: true },
  { path: ["releaseName"], value: DEFAULT_RESOURCE_NAME },
  { path: ["rollout", "timeoutSeconds"], value: COMPONENT_DEFAULTS.rollout.timeoutSeconds },
];

/** Whether an option's default applies: the mode's default yields to `values.deploymentMode` (the chart's own
 * way to set it), and `job.*` defaults apply in job mode only. */
function defaultApplies(o: ArgOption, args: Args): boolean {
  if (o.path[0] === "deploymentMode") return get(args, ["values", "deploymentMode"]) === undefined;
  if (o.path[0] === "job") return (args.deploymentMode ?? get(args, ["values", "deploymentMode"])) === "job";
  return true;
}

/** `fileArgs` (`{}` without a file) with the options (the mode's first) and the demo defaults applied. */
export function composeArgs(
  fileArgs: unknown,
  options: readonly ArgOption[],
  fileName = "the --args file",
): Args {
  if (!isMap(fileArgs))
    throw new UsageError(`${fileName}: expected a map of the component's args (key: value)`);
  let args: Args = { ...fileArgs };
  const conflicts: string[] = [];
  for (const o of options) {
    if (get(fileArgs, o.path) !== undefined) {
      if (o.explicit) conflicts.push(`${o.flag} and ${o.path.join(".")} in ${fileName}: give one of them`);
    } else if (o.explicit || defaultApplies(o, args)) {
      args = set(args, o.path, o.value);
    }
  }
  if (conflicts.length > 0) throw new UsageError(conflicts.join("; "));
  for (const d of DEMO_DEFAULTS) if (get(args, d.path) === undefined) args = set(args, d.path, d.value);
  return args;
}
