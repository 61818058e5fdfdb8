// clew ui: the router. Each view is a function mount(root, route, {signal}) that fills `root`
// and may return {update(route)}: update handles a new route of the same view in place (the
// trace view selects another span without rebuilding 5,000 rows) and returns true if it did.
// `signal` aborts when the view goes: its requests and timers stop with it.

import { el, fill, link } from "./dom.js";
import { parseHash } from "./router.js";
import { mountTraces } from "./traces.js";
import { mountTrace } from "./trace.js";
import { mountSession } from "./sessions.js";
import { mountDashboard } from "./dashboard.js";
import { mountExperiments, mountExperiment } from "./experiments.js";
import { mountCompare } from "./compare.js";
import { mountDatasets, mountDataset } from "./datasets.js";

// [first path segment, view when there is no further segment, view given one]
const VIEWS = {
  traces: [mountTraces, null],
  trace: [null, mountTrace],
  sessions: [null, mountSession],
  dashboard: [mountDashboard, null],
  experiments: [mountExperiments, mountExperiment],
  compare: [mountCompare, null],
  datasets: [mountDatasets, mountDataset],
};

// Which nav entry is lit for each view.
const NAV_OF = { trace: "traces", sessions: "traces", compare: "experiments" };

const root = document.getElementById("view");
let current = null; // {mount, path, controller, view}

function notFound(container, route) {
  fill(
    container,
    el("h1", "Not found"),
    el("p", `There is no view at #/${route.path}.`),
    el("p", link("#/traces", "Go to the traces")),
  );
}

function viewOf(route) {
  const [first, ...rest] = route.parts;
  const entry = VIEWS[first];
  if (!entry) return notFound;
  if (rest.length === 0) return entry[0] ?? notFound;
  return rest.length === 1 ? (entry[1] ?? notFound) : notFound;
}

function highlightNav(route) {
  const name = NAV_OF[route.parts[0]] ?? route.parts[0];
  for (const item of document.querySelectorAll("[data-nav]")) {
    item.classList.toggle("active", item.dataset.nav === name);
  }
}

function render() {
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    history.replaceState(history.state, "", "#/traces");
  }
  const route = parseHash(location.hash);
  const mount = viewOf(route);
  highlightNav(route);
  if (current && current.mount === mount && current.path === route.path && current.view?.update?.(route)) {
    return;
  }
  current?.controller.abort();
  const controller = new AbortController();
  root.replaceChildren();
  window.scrollTo(0, 0);
  const view = mount(root, route, { signal: controller.signal });
  current = { mount, path: route.path, controller, view };
}

window.addEventListener("hashchange", render);
render();
