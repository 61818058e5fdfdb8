// The viewer's JSON API (src/clew/ui/api.py). Requests carry the cookie the server set.

import { searchOf } from "./router.js";

/** A failed request: the server's message and the HTTP status (0 when it was not reached). */
class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** GET an API path: its JSON, or an ApiError with the server's message. */
export async function getJSON(path, params = {}, signal = undefined) {
  let response;
  try {
    response = await fetch(`/api/${path}${searchOf(params)}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError("The clew ui server cannot be reached. Is `clew ui` still running?", 0);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status);
  }
  if (body === null) throw new ApiError(`the server sent no JSON for ${path}`, response.status);
  return body;
}

/** A path segment of an id or name, for getJSON paths. */
export const segment = (text) => encodeURIComponent(String(text));

export const isAbort = (error) => error?.name === "AbortError";
