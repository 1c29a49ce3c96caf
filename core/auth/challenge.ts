/**
 * The one `WWW-Authenticate` parser (RFC 7235): several challenges in one header, quoted strings
 * with escapes, parameters in any order, unknown ones kept.
 *
 * sregistry-cli required `realm`, `service` and `scope` in one fixed order, so NGC's challenge (no
 * `service`) failed; here parameters are parsed generically and missing ones are left out.
 * @module
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** The scheme, lower-case (`bearer`, `basic`). */
  scheme: string;
  /** Parameters with lower-case names. */
  params: Record<string, string>;
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/;

/** Parse a `WWW-Authenticate` header into its challenges (none for a missing header). */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (!header) return out;
  let i = 0;
  const s = header;
  const token = () => {
    const m = TOKEN.exec(s.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    while (i < s.length && /[\s,]/.test(s[i])) i++;
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      while (i < s.length && /[\s,]/.test(s[i])) i++;
      const save = i;
      const name = token();
      while (i < s.length && s[i] === " ") i++;
      if (!name || s[i] !== "=") {
        // Either the next challenge's scheme or a token68; leave it for the outer loop.
        i = save;
        break;
      }
      i++;
      while (i < s.length && s[i] === " ") i++;
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        const m = /^[^\s,]*/.exec(s.slice(i))!;
        value = m[0];
        i += value.length;
      }
      ch.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** The first challenge of a scheme (`bearer`, `basic`) in a response's `WWW-Authenticate`. */
export function findChallenge(response: Response, scheme: string): Challenge | undefined {
  return parseChallenges(response.headers.get("www-authenticate")).find((c) => c.scheme === scheme);
}
