/**
 * Userinfo (`user:PASS@`) removed from URLs before the catalog stores or shows them: a password in a
 * URL is for the request only. Only http(s)/ftp URLs, so `docker://name@sha256:...` keeps its digest.
 * @module
 */

const USERINFO = /\b((?:https?|ftps?):\/\/)[^\s/?#@"'<>\\]*@/gi;

/** `text` with the userinfo of every http(s)/ftp URL in it removed. */
export function stripUserinfo(text: string): string {
  return text.replace(USERINFO, "$1");
}

/** A JSON value with {@link stripUserinfo} applied to every string in it. */
export function stripUserinfoDeep<T>(value: T): T {
  if (typeof value === "string") return stripUserinfo(value) as T;
  if (Array.isArray(value)) return value.map(stripUserinfoDeep) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, stripUserinfoDeep(v)]),
    ) as T;
  }
  return value;
}
