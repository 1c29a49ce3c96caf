/**
 * `sregistry completions bash|zsh|fish`: a completion script for the shell, generated from the
 * command table (commands, their flags and the global flags) and the client registry (schemes).
 * Image names are not baked in: the scripts ask `sregistry completions --names` at completion time,
 * which opens only the catalog (no clients, no http stack) and prints one name a line.
 * @module
 */

import type { App } from "../app.ts";
import { COMMANDS, type CommandSpec, GLOBAL_OPTIONS, type OptionSpec } from "../command_table.ts";
import { UsageError } from "../../core/errors.ts";
import { VERSION } from "../../core/version.ts";

/** The shells a script can be printed for. */
export const SHELLS: readonly string[] = ["bash", "zsh", "fish"];

/** What a positional argument or an option value completes to. */
export type Completion =
  | "images"
  | "schemes"
  | "clients"
  | "files"
  | "commands"
  | "topics"
  | "none"
  | readonly string[];

/** What the scripts are made of. */
export interface CompletionData {
  /** The commands, with their options. */
  commands: readonly CommandSpec[];
  /** The flags every command takes. */
  globals: readonly OptionSpec[];
  /** Client names (`docker`, `s3`, ...), each also offered as `<name>://`. */
  clients: readonly string[];
}

/** The actions of `sregistry backend`. */
const BACKEND_ACTIONS = ["ls", "status", "activate", "deactivate", "delete", "add", "rm"];

/**
 * What each positional argument completes to, by command. A variadic last argument repeats its
 * kind; commands missing here complete files.
 */
const POSITIONALS: Readonly<Record<string, readonly Completion[]>> = {
  version: [],
  images: ["images"],
  inspect: ["images"],
  get: ["images"],
  add: ["files"],
  mv: ["images", "files"],
  rename: ["images", "none"],
  rm: ["images"],
  record: ["schemes"],
  labels: [],
  pull: ["schemes"],
  push: ["files"],
  search: ["schemes"],
  delete: ["schemes"],
  share: ["schemes"],
  build: ["files"],
  backend: [BACKEND_ACTIONS, "clients"],
  cache: [["ls", "prune"]],
  shell: ["clients"],
  completions: [SHELLS],
  // `help <command>` or `help <client>`.
  help: ["topics"],
};

/** What an option's value completes to. */
function valueCompletion(command: string, option: OptionSpec): Completion {
  if (option.name === "name" && (command === "push" || command === "build")) return "schemes";
  if (/path|file|json|dir/.test(option.value ?? "")) return "files";
  return "none";
}

/** The positional kinds of a command, as a function of the position. */
function positionals(spec: CommandSpec | undefined, name: string): {
  kinds: readonly Completion[];
  repeat: boolean;
} {
  const kinds = POSITIONALS[name] ?? spec?.args.map(() => "files" as const) ?? [];
  return { kinds, repeat: spec?.args[spec.args.length - 1]?.variadic ?? false };
}

/** The data for the scripts from the command table and the registered clients. */
export async function completionData(): Promise<CompletionData> {
  const { FACTORIES } = await import("../../clients/mod.ts");
  const clients = FACTORIES.flatMap((f) => [f.scheme, ...(f.aliases ?? [])])
    // google_drive and friends are spellings of google-drive; offering both is noise.
    .filter((s) => !s.includes("_"));
  return { commands: COMMANDS, globals: GLOBAL_OPTIONS, clients: [...new Set(clients)].sort() };
}

const flags = (o: OptionSpec) => [`--${o.name}`, ...(o.short ? [`-${o.short}`] : [])];
/** The flags of the options that take a value, as ` --a -b ` (for `*" $w "*` tests). */
const valuedFlags = (options: readonly OptionSpec[]) => {
  const list = options.filter((o) => o.type === "string").flatMap(flags);
  return list.length ? ` ${list.join(" ")} ` : "";
};
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function words(kind: Completion, data: CompletionData): string[] {
  if (kind === "schemes") return data.clients.map((c) => `${c}://`);
  if (kind === "clients") return [...data.clients];
  if (kind === "commands") return [...data.commands.map((c) => c.name), "help"];
  if (kind === "topics") return [...data.commands.map((c) => c.name), ...data.clients];
  if (typeof kind === "string") return [];
  return [...kind];
}

/** Every command with a positional table, help included. */
function commandNames(data: CompletionData): string[] {
  return [...data.commands.map((c) => c.name), "help"];
}

/** The bash shell code completing `kind` into `replies`. */
function bashKind(kind: Completion, data: CompletionData): string {
  if (kind === "images") return `_sregistry_reply "$(_sregistry_names "\${words[0]}")"`;
  if (kind === "files" || kind === "none") return ":";
  const list = words(kind, data);
  const nospace = kind === "schemes" ? " nospace" : "";
  return `_sregistry_reply ${sq(list.join(" "))}${nospace}`;
}

function bashScript(data: CompletionData): string {
  const names = commandNames(data);
  const globalFlags = data.globals.flatMap(flags);
  const globalValued = valuedFlags(data.globals);
  const perCommand = names.map((name) => {
    const spec = data.commands.find((c) => c.name === name);
    const options = spec?.options ?? [];
    const valued = options.filter((o) => o.type === "string");
    const cases: string[] = [];
    for (const o of valued) {
      cases.push(
        `        ${flags(o).join("|")}) ${bashKind(valueCompletion(name, o), data)}; return ;;`,
      );
    }
    const { kinds, repeat } = positionals(spec, name);
    const pos = kinds.map((k, i) =>
      `        ${repeat && i === kinds.length - 1 ? `${i}|*` : i}) ${bashKind(k, data)} ;;`
    );
    const body = [
      `flags=${sq(options.flatMap(flags).join(" "))}`,
      ...(cases.length ? ["case $prev in", ...cases, "esac"] : []),
      '[[ $cur == -* ]] && { _sregistry_reply "$flags $globals"; return; }',
      ...(pos.length
        ? [
          `_sregistry_position ${sq(valuedFlags(valued))}"$gvalued"`,
          "case $pos in",
          ...pos,
          "esac",
        ]
        : []),
    ];
    return `    ${name})\n${
      body.map((l) => l.startsWith("    ") ? l : `      ${l}`).join("\n")
    }\n      ;;`;
  });
  return `# bash completion for sregistry ${VERSION} (generated by "sregistry completions bash").
# Install: sregistry completions bash > ~/.local/share/bash-completion/completions/sregistry
# or, for one session: source <(sregistry completions bash)

# The catalog's image names, from the CLI being completed (so a ./dist/sregistry is asked itself).
_sregistry_names() {
  local prog=\${1/#\\~/$HOME}
  "$prog" completions --names 2>/dev/null
}

# COMPREPLY from the words in $1 that start with the current word; $2=nospace keeps the cursor on
# the word (for scheme://). bash split the word at ':' (COMP_WORDBREAKS), so the part up to the last
# ':' is taken off each reply, as bash replaces only what follows it.
_sregistry_reply() {
  local IFS=$' \\t\\n' w
  COMPREPLY=()
  for w in $1; do
    [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
  done
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local colon=\${cur%"\${cur##*:}"} i
    for i in "\${!COMPREPLY[@]}"; do COMPREPLY[i]=\${COMPREPLY[i]#"$colon"}; done
  fi
  [[ $2 == nospace ]] && compopt -o nospace 2>/dev/null
  return 0
}

# pos: the index of the current positional argument after the command (flags and the values of the
# options in $1 are skipped).
_sregistry_position() {
  local i w
  pos=0
  for ((i = cmdi + 1; i < cword; i++)); do
    w=\${words[i]}
    if [[ $w == -* ]]; then
      [[ $1 == *" $w "* ]] && ((i++))
      continue
    fi
    ((pos++))
  done
}

_sregistry() {
  local words=() cword=0 i w
  # Join back what bash split at ':', so that docker://x and name:tag are one word.
  for ((i = 0; i < \${#COMP_WORDS[@]}; i++)); do
    w=\${COMP_WORDS[i]}
    if ((i > 1)) && [[ $w == : || \${COMP_WORDS[i - 1]} == : ]]; then
      words[\${#words[@]}-1]+=$w
    else
      words+=("$w")
    fi
    ((i == COMP_CWORD)) && cword=$((\${#words[@]} - 1))
  done
  local cur=\${words[cword]} prev=\${words[cword - 1]} cmd="" cmdi=0 pos flags
  local globals=${sq(globalFlags.join(" "))} gvalued=${sq(globalValued)}
  COMPREPLY=()
  # A global option's value (a path): bash's own file completion (complete -o default).
  [[ $gvalued == *" $prev "* ]] && return 0
  for ((i = 1; i < cword; i++)); do
    if [[ $gvalued == *" \${words[i]} "* ]]; then
      ((i++))
    elif [[ \${words[i]} != -* ]]; then
      cmd=\${words[i]}
      cmdi=$i
      break
    fi
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then _sregistry_reply "$globals"; else _sregistry_reply ${
    sq(names.join(" "))
  }; fi
    return 0
  fi
  case $cmd in
${perCommand.join("\n")}
  esac
  return 0
}

complete -o default -F _sregistry sregistry
`;
}

function zshKind(kind: Completion, data: CompletionData): string {
  if (kind === "images") {
    return `local -a imgs; imgs=(\${(f)"$(\${~words[1]} completions --names 2>/dev/null)"}); compadd -a imgs`;
  }
  if (kind === "files") return "_files";
  if (kind === "none") return ":";
  if (kind === "commands") return "_describe -t commands 'sregistry command' commands";
  return `compadd${kind === "schemes" ? " -S ''" : ""} -- ${words(kind, data).join(" ")}`;
}

function zshScript(data: CompletionData): string {
  const names = commandNames(data);
  const described = (o: OptionSpec) =>
    flags(o).map((f) => `    ${sq(`${f}:${o.description}`)}`).join("\n");
  const perCommand = names.map((name) => {
    const spec = data.commands.find((c) => c.name === name);
    const options = spec?.options ?? [];
    const valued = options.filter((o) => o.type === "string");
    const cases = valued.map((o) =>
      `        ${flags(o).join("|")}) ${zshKind(valueCompletion(name, o), data)}; return ;;`
    );
    const { kinds, repeat } = positionals(spec, name);
    const pos = kinds.map((k, i) =>
      `        ${repeat && i === kinds.length - 1 ? "*" : i}) ${zshKind(k, data)} ;;`
    );
    return `    ${name})
      flags=(${options.length ? `\n${options.map(described).join("\n")}\n      ` : ""})
      valued=${sq(valuedFlags(valued))}${
      cases.length ? `\n      case $prev in\n${cases.join("\n")}\n      esac` : ""
    }
      if [[ $cur == -* ]]; then _describe -t options 'option' flags -- globals; return; fi
      _sregistry_position
      case $pos in
${pos.join("\n")}
        *) _files ;;
      esac
      ;;`;
  });
  const commandList = [
    ...data.commands.map((c) => `    ${sq(`${c.name}:${c.summary}`)}`),
    `    ${sq("help:print help for a command")}`,
  ];
  return `#compdef sregistry
# zsh completion for sregistry ${VERSION} (generated by "sregistry completions zsh").
# Install: sregistry completions zsh > "\${fpath[1]}/_sregistry" (then compinit),
# or, for one session: source <(sregistry completions zsh)

_sregistry_position() {
  local i
  pos=0
  for (( i = cmdi + 1; i < CURRENT; i++ )); do
    if [[ \${words[i]} == -* ]]; then
      [[ $valued$gvalued == *" \${words[i]} "* ]] && (( i++ ))
      continue
    fi
    (( pos++ ))
  done
}

_sregistry() {
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]} cmd= cmdi=0 pos=0 valued= i
  local gvalued=${sq(valuedFlags(data.globals))}
  local -a commands globals flags
  commands=(
${commandList.join("\n")}
  )
  globals=(
${data.globals.map(described).join("\n")}
  )
  if [[ $gvalued == *" $prev "* ]]; then _files; return; fi
  for (( i = 2; i < CURRENT; i++ )); do
    if [[ $gvalued == *" \${words[i]} "* ]]; then
      (( i++ ))
    elif [[ \${words[i]} != -* ]]; then
      cmd=\${words[i]}
      cmdi=$i
      break
    fi
  done
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _describe -t options 'global option' globals
    else
      _describe -t commands 'sregistry command' commands
    fi
    return
  fi
  case $cmd in
${perCommand.join("\n")}
  esac
}

if [[ "\${funcstack[1]}" == "_sregistry" ]]; then
  _sregistry "$@"
else
  compdef _sregistry sregistry
fi
`;
}

function fishKind(kind: Completion, data: CompletionData): string {
  if (kind === "images") return "-f -a '(__sregistry_names)'";
  if (kind === "files") return "-F";
  if (kind === "none") return "-f";
  return `-f -a ${sq(words(kind, data).join(" "))}`;
}

function fishScript(data: CompletionData): string {
  const names = commandNames(data);
  const opt = (o: OptionSpec, extra = "") =>
    `${o.short ? ` -s ${o.short}` : ""} -l ${o.name}${
      o.type === "string" ? " -r" : ""
    }${extra} -d ${sq(o.description)}`;
  const lines: string[] = [
    `# fish completion for sregistry ${VERSION} (generated by "sregistry completions fish").`,
    "# Install: sregistry completions fish > ~/.config/fish/completions/sregistry.fish",
    "",
    "# The catalog's image names, from the CLI being completed.",
    "function __sregistry_names",
    "    set -l prog (commandline -opc)[1]",
    "    $prog completions --names 2>/dev/null",
    "end",
    "",
    "complete -c sregistry -f",
    ...data.globals.map((o) => `complete -c sregistry${opt(o)}`),
    ...data.commands.map((c) =>
      `complete -c sregistry -n __fish_use_subcommand -a ${c.name} -d ${sq(c.summary)}`
    ),
    "complete -c sregistry -n __fish_use_subcommand -a help -d 'print help for a command'",
  ];
  for (const name of names) {
    const spec = data.commands.find((c) => c.name === name);
    const when = `-n ${sq(`__fish_seen_subcommand_from ${name}`)}`;
    for (const o of spec?.options ?? []) {
      const value = o.type === "string" ? valueCompletion(name, o) : "none";
      const extra = value === "files" ? " -F" : value === "none" ? "" : ` ${fishKind(value, data)}`;
      lines.push(`complete -c sregistry ${when}${opt(o, extra)}`);
    }
    // fish does not count positionals: offer every kind the command's positionals take.
    const kinds = [...new Set(positionals(spec, name).kinds)].filter((k) => k !== "none");
    for (const k of kinds) lines.push(`complete -c sregistry ${when} ${fishKind(k, data)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The completion script for `shell`. */
export function completionScript(shell: string, data: CompletionData): string {
  if (shell === "bash") return bashScript(data);
  if (shell === "zsh") return zshScript(data);
  if (shell === "fish") return fishScript(data);
  throw unknownShell(shell);
}

function unknownShell(shell: string): UsageError {
  return new UsageError(`Unknown shell ${JSON.stringify(shell)}: use one of ${SHELLS.join(", ")}`);
}

/** The catalog's image names (`collection/name:tag`), sorted, without opening a missing one. */
export function catalogNames(app: App): string[] {
  if (app.settings.disableDatabase) return [];
  try {
    Deno.statSync(app.settings.databasePath);
  } catch {
    // No catalog yet: completing must not create one.
    return [];
  }
  const rows = app.catalog().images();
  return [...new Set(rows.map((r) => `${r.collection}/${r.name}:${r.tag}`))].sort();
}

/** Print the script for `shell`, or (with `names`) the catalog's image names. */
export async function completionsCommand(
  app: App,
  shell: string | undefined,
  options: { names?: boolean },
): Promise<void> {
  if (options.names) {
    for (const name of catalogNames(app)) app.out.line(name);
    return;
  }
  if (shell === undefined) {
    throw new UsageError(
      `Missing argument <shell>: usage: sregistry completions ${SHELLS.join("|")}`,
    );
  }
  if (!SHELLS.includes(shell)) throw unknownShell(shell);
  const script = completionScript(shell, await completionData());
  app.out.line(script.replace(/\n$/, ""));
}
