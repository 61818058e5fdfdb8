// Datasets: the list, and one dataset's rows at a version.

import { getJSON, isAbort, segment } from "./api.js";
import { el, errorBox, fill, link, loading, pageHeader, table } from "./dom.js";
import * as format from "./format.js";
import { jsonView } from "./json.js";
import { hashOf, navigate } from "./router.js";

export function mountDatasets(root, route, { signal }) {
  const body = el("div", loading("Loading datasets…"));
  root.append(pageHeader("Datasets"), body);
  getJSON("datasets", {}, signal)
    .then(({ datasets }) => {
      if (!datasets.length) {
        fill(
          body,
          el("div", { class: "empty" }, "No datasets yet. Create one with clew.datasets.create(name, rows)."),
        );
        return;
      }
      const rows = datasets.map((item) => [
        link(hashOf(["datasets", item.name]), item.name),
        `v${item.version}`,
        String(item.versions ?? "—"),
        format.tokens(item.row_count),
        format.dateTime(item.created),
      ]);
      fill(
        body,
        table(["dataset", "latest", "versions", "rows", "created"], rows, { testid: "datasets-table" }),
      );
    })
    .catch((error) => isAbort(error) || fill(body, errorBox(error)));
}

function versionPicker(name, version, versions) {
  const options = Array.from({ length: versions }, (_, i) => versions - i);
  const picker = el(
    "select",
    { attrs: { "aria-label": "version" }, testid: "dataset-version" },
    options.map((v) => el("option", { attrs: { value: v, selected: v === version } }, `version ${v}`)),
  );
  picker.addEventListener("change", () => navigate(hashOf(["datasets", name], { version: picker.value })));
  return picker;
}

const cell = (value) =>
  value === null || value === undefined ? el("span", { class: "muted" }, "—") : jsonView(value);

export function mountDataset(root, route, { signal }) {
  const name = route.parts[1];
  const version = route.params.get("version");
  root.append(loading("Loading the dataset…"));
  const list = getJSON("datasets", {}, signal).catch(() => ({ datasets: [] }));
  Promise.all([getJSON(`datasets/${segment(name)}`, { version }, signal), list])
    .then(([data, { datasets }]) => {
      const versions = datasets.find((item) => item.name === name)?.versions ?? data.version;
      const rows = (data.rows ?? []).map((row) => [
        String(row.index),
        cell(row.inputs),
        cell(row.target),
        cell(row.metadata),
      ]);
      fill(
        root,
        pageHeader(`Dataset ${data.name}`, versionPicker(data.name, data.version, versions)),
        el(
          "p",
          { class: "muted" },
          `Version ${data.version}, created ${format.dateTime(data.created)}, ${rows.length} rows.`,
        ),
        el(
          "div",
          { class: "table-wrap" },
          table(["#", "inputs", "target", "metadata"], rows, { testid: "dataset-rows", class: "table top" }),
        ),
      );
    })
    .catch(
      (error) =>
        isAbort(error) ||
        fill(
          root,
          pageHeader(`Dataset ${name}`),
          errorBox(error),
          link(hashOf(["datasets"]), "All datasets"),
        ),
    );
}
