/**
 * The evaluator behind `sregistry shell`: JavaScript (and simply typed TypeScript) with top-level
 * await, in a scope that lives across inputs.
 *
 * Each input runs as the body of an `AsyncFunction` wrapped in `with (scope)`, where the scope is a
 * proxy over one object kept for the session: every name resolves there first and then on
 * `globalThis`, and every assignment lands there. So that `let x = 1` on one line is `x` on the
 * next, top-level declarations are rewritten into assignments (`let x: T = 1` -> `x = 1`,
 * `function f` -> `f = function f`, `class C` -> `C = class C`). Nothing is imported or fetched,
 * so it works the same from `deno run` and from a compiled binary.
 *
 * Limits (documented in docs/commands/shell.md): TypeScript is not compiled; annotations on
 * top-level declarations and `as`/`satisfies` casts are removed, other types (interfaces, generic
 * calls, typed parameters) are syntax errors. `import` statements are not available (use
 * a dynamic import of a local file, which the binary must contain). A regular expression
 * literal holding quotes or brackets can confuse the statement splitter.
 * @module
 */

/** What one input gave. */
export interface EvalResult {
  /** The value of the last expression, when the input ended in one (not a declaration). */
  value?: unknown;
  /** Whether {@link EvalResult.value} means something. */
  hasValue: boolean;
}

/** A session's evaluator. */
export interface Evaluator {
  /** The session's variables (the initial ones plus every name assigned or declared). */
  readonly scope: Record<string, unknown>;
  /** Run one input; its exceptions propagate. */
  evaluate(code: string): Promise<EvalResult>;
}

interface Scan {
  /** The code with string and comment contents blanked (same length). */
  mask: string;
  /** Offsets of `;` and newlines outside any bracket, string or comment. */
  boundaries: number[];
  /** False when a bracket, template literal or block comment is still open. */
  complete: boolean;
}

/** Find statement boundaries, and whether more lines are needed. */
function scan(code: string): Scan {
  let mask = "";
  const boundaries: number[] = [];
  let depth = 0;
  // The bracket depth at which each open `${` of a template literal began.
  const templates: number[] = [];
  let state: "code" | "'" | '"' | "`" | "line" | "block" = "code";
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    const n = code[i + 1];
    if (state === "code") {
      if (c === "'" || c === '"' || c === "`") state = c;
      else if (c === "/" && n === "/") state = "line";
      else if (c === "/" && n === "*") {
        state = "block";
        mask += "/*";
        i++;
        continue;
      } else if (c === "(" || c === "[" || c === "{") depth++;
      else if (c === ")" || c === "]" || c === "}") {
        if (c === "}" && templates.length && templates[templates.length - 1] === depth) {
          templates.pop();
          state = "`";
        }
        depth--;
      } else if ((c === ";" || c === "\n") && depth === 0) boundaries.push(i);
      mask += c;
    } else if (state === "'" || state === '"') {
      if (c === "\\" && n !== undefined && n !== "\n") {
        mask += "  ";
        i++;
      } else if (c === state) {
        state = "code";
        mask += c;
      } else if (c === "\n") {
        // A newline ends an unterminated string: the syntax error is the parser's to report.
        state = "code";
        i--;
      } else mask += " ";
    } else if (state === "`") {
      if (c === "\\" && n !== undefined) {
        mask += n === "\n" ? " \n" : "  ";
        i++;
      } else if (c === "`") {
        state = "code";
        mask += c;
      } else if (c === "$" && n === "{") {
        depth++;
        templates.push(depth);
        state = "code";
        mask += "${";
        i++;
      } else mask += c === "\n" ? "\n" : " ";
    } else if (state === "line") {
      if (c === "\n") {
        state = "code";
        i--;
      } else mask += " ";
    } else {
      if (c === "*" && n === "/") {
        state = "code";
        mask += "*/";
        i++;
      } else mask += c === "\n" ? "\n" : " ";
    }
  }
  const complete = depth <= 0 && state !== "`" && state !== "block";
  return { mask, boundaries, complete };
}

/**
 * Whether `code` is a whole input, or needs more lines (an open bracket, template literal or
 * block comment).
 */
export function isComplete(code: string): boolean {
  return scan(code).complete;
}

interface Statement {
  /** The (rewritten) text. */
  text: string;
  /** Its blanked form, for finding what is code. */
  mask: string;
  /** The separator that followed it (`;`, a newline, or "" at the end). */
  sep: string;
  /** It was a declaration (its value is not printed). */
  declaration: boolean;
}

const IDENT = /^(\s*)([A-Za-z_$][\w$]*)/;
const DECLARATION = /^(\s*)(const|let|var)(\s+)/;
const FUNCTION = /^(\s*)((?:async\s+)?function\b\s*\*?\s*([A-Za-z_$][\w$]*))/;
const CLASS = /^(\s*)(class\s+([A-Za-z_$][\w$]*))/;

/** Split at commas (or find an `=`) outside brackets, in a blanked text. */
function topLevel(mask: string, what: "," | "="): number[] {
  const at: number[] = [];
  let depth = 0;
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i];
    if ("([{<".includes(c) && !(c === "<" && what === ",")) depth++;
    else if (")]}".includes(c) || (c === ">" && what === "=" && mask[i - 1] !== "=")) depth--;
    else if (depth === 0 && c === what) {
      if (what === "=" && ("=>".includes(mask[i + 1] ?? "") || "=!<>".includes(mask[i - 1]))) {
        continue;
      }
      at.push(i);
    }
  }
  return at;
}

/** `name: Type = init` -> `name = init`; `name` -> `name = undefined`. */
function declarator(text: string, mask: string): string {
  const m = mask.match(IDENT);
  if (!m) return text;
  const nameEnd = m[0].length;
  const rest = mask.slice(nameEnd);
  const eq = topLevel(rest, "=")[0];
  const name = text.slice(0, nameEnd);
  if (eq === undefined) return `${name} = undefined`;
  return `${name} =${text.slice(nameEnd + eq + 1)}`;
}

function rewrite(text: string, mask: string): { text: string; declaration: boolean } {
  const d = mask.match(DECLARATION);
  if (d) {
    const lead = d[1];
    const body = text.slice(d[0].length);
    const bodyMask = mask.slice(d[0].length);
    const first = bodyMask.trimStart()[0];
    // Destructuring: `({a} = x)` and `[a, b] = x`, after a `;` so the previous line cannot run on.
    if (first === "{") return { text: `${lead};(${body})`, declaration: true };
    if (first === "[") return { text: `${lead};${body}`, declaration: true };
    const cuts = [-1, ...topLevel(bodyMask, ","), body.length];
    const parts = cuts.slice(1).map((end, i) =>
      declarator(body.slice(cuts[i] + 1, end), bodyMask.slice(cuts[i] + 1, end))
    );
    return { text: `${lead}${parts.join(",")}`, declaration: true };
  }
  const f = mask.match(FUNCTION) ?? mask.match(CLASS);
  if (f) {
    return { text: `${f[1]}${f[3]} = ${text.slice(f[1].length)}`, declaration: true };
  }
  return { text, declaration: false };
}

function statements(code: string): Statement[] {
  const { mask, boundaries } = scan(code);
  const out: Statement[] = [];
  let start = 0;
  for (const end of [...boundaries, code.length]) {
    const r = rewrite(code.slice(start, end), mask.slice(start, end));
    out.push({
      ...r,
      mask: r.declaration ? r.text : mask.slice(start, end),
      sep: code.slice(end, end + 1),
    });
    start = end + 1;
  }
  return out;
}

/** Remove `as T` and `satisfies T` casts (outside strings and comments). */
function stripCasts(code: string): string {
  const { mask } = scan(code);
  const cast =
    /\s+(?:as|satisfies)\s+(?:const\b|[A-Za-z_$][\w$.]*(?:<[\w$.,\s<>[\]|]*>)?(?:\[\])*(?:\s*\|\s*[A-Za-z_$][\w$.]*(?:\[\])*)*)/g;
  let out = "";
  let last = 0;
  for (const m of mask.matchAll(cast)) {
    out += code.slice(last, m.index);
    last = m.index + m[0].length;
  }
  return out + code.slice(last);
}

type Compiled = (scope: object) => Promise<unknown>;
const AsyncFunction = (async () => {}).constructor as new (
  ...args: string[]
) => Compiled;

function compile(body: string): Compiled {
  // Sloppy mode on purpose: `with` is what keeps the session's names in one object.
  return new AsyncFunction("__sregistryScope", `with (__sregistryScope) {\n${body}\n}`);
}

/** The function for an input, returning its last expression when it ends in one. */
function build(code: string): { fn: Compiled; hasValue: boolean } {
  const stmts = statements(code);
  let last = stmts.length - 1;
  while (last >= 0 && stmts[last].mask.trim() === "") last--;
  const join = (list: Statement[]) => list.map((s) => s.text + s.sep).join("");
  if (last >= 0 && !stmts[last].declaration) {
    try {
      const body = `${join(stmts.slice(0, last))}return (${stmts[last].text}\n);`;
      return { fn: compile(body), hasValue: true };
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // Not an expression (a statement such as `if`): run it for its effects.
    }
  }
  return { fn: compile(join(stmts)), hasValue: false };
}

/** Make an evaluator whose scope starts with `initial`. */
export function createEvaluator(initial: Record<string, unknown>): Evaluator {
  const scope: Record<string, unknown> = Object.assign(Object.create(null), initial);
  const global = globalThis as unknown as Record<PropertyKey, unknown>;
  const proxy = new Proxy(scope, {
    has: (_t, key) => typeof key === "string",
    get(t, key) {
      if (key in t) return t[key as string];
      if (key in global) return global[key];
      if (typeof key === "symbol") return undefined;
      throw new ReferenceError(`${key} is not defined`);
    },
    set(t, key, value) {
      t[key as string] = value;
      return true;
    },
  });
  return {
    scope,
    async evaluate(code) {
      let built: { fn: Compiled; hasValue: boolean };
      try {
        built = build(code);
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        const stripped = stripCasts(code);
        if (stripped === code) throw error;
        try {
          built = build(stripped);
        } catch {
          throw error;
        }
      }
      const value = await built.fn(proxy);
      return built.hasValue ? { value, hasValue: true } : { hasValue: false };
    },
  };
}
