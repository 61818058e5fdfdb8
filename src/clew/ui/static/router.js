// Hash routes: every view's state is in the URL (`#/traces?q=refund&status=error`), so a link
// restores the view and back/forward work.

/** The route of a hash: its decoded path segments and its query parameters. */
export function parseHash(hash) {
  const text = hash.replace(/^#/, "");
  const [path, query = ""] = splitOnce(text, "?");
  const parts = path
    .split("/")
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
  return { parts, params: new URLSearchParams(query), path };
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

/**
 * The hash of a route: `hashOf(["trace", id], {span: x})` is `#/trace/<id>?span=<x>`.
 * Empty parameters are left out.
 */
export function hashOf(parts, params = {}) {
  const path = parts.map((part) => encodeURIComponent(String(part))).join("/");
  return `#/${path}${searchOf(params)}`;
}

/** The query of a URL (`?a=1&b=x`, or "" when there is none); empty parameters are left out. */
export function searchOf(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const search = query.toString();
  return search ? `?${search}` : "";
}

/**
 * Go to a route. `replace` changes the current history entry instead of adding one (for
 * choices within a view, such as the selected span, that back should not step through).
 */
export function navigate(hash, { replace = false } = {}) {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(history.state, "", hash);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = hash;
  }
}
