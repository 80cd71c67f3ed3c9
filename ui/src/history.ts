// History: a repository's commits with their provenance, a plot of a variable's
// latest records, and an overview of its whole history (a mean per day, from the
// statistics Floe keeps at ingest, so a year costs a few reads).
import { api, FloeError, type CommitView, type StatsAnswer, type StatusView, type Variable } from "./api";
import { field, h, say, setText } from "./dom";
import { fmt, valueRows, meansSeries, overviewSummary, plot, summary, when, widthWords } from "./plot";

let repoSel: HTMLSelectElement;
let other: HTMLInputElement;
let branchIn: HTMLInputElement;
let table: HTMLTableSectionElement;
let msg: HTMLElement;
let varSel: HTMLSelectElement;
let plotBox: HTMLElement;
let plotText: HTMLElement;
let plotRows: HTMLTableSectionElement;
let overBox: HTMLElement;
let overText: HTMLElement;
let overRows: HTMLTableSectionElement;
let everySel: HTMLSelectElement;
let variables: Variable[] = [];
let lastTip = "";
let known = "";

function target(): { repo: string; branch: string } | null {
  const repo = other.value.trim() || repoSel.value;
  return repo ? { repo, branch: branchIn.value.trim() || "main" } : null;
}

export function mountHistory(root: HTMLElement): void {
  repoSel = h("select", { id: "history-repo" }) as HTMLSelectElement;
  other = h("input", { id: "history-other", placeholder: "s3://bucket/path or /data/repo", autocomplete: "off" }) as HTMLInputElement;
  branchIn = h("input", { id: "history-branch", value: "main" }) as HTMLInputElement;
  msg = h("p", { id: "history-msg", class: "msg", "data-kind": "none" });
  table = h("tbody", { id: "commits" }) as HTMLTableSectionElement;
  varSel = h("select", { id: "plot-var" }) as HTMLSelectElement;
  const recs = h("input", { id: "plot-records", type: "number", min: 1, max: 10000, value: 200 }) as HTMLInputElement;
  plotBox = h("figure", { id: "plot", class: "plotbox" });
  plotText = h("p", { id: "plot-summary", class: "muted", "aria-live": "polite" });
  plotRows = h("tbody", { id: "plot-values" }) as HTMLTableSectionElement;
  overBox = h("figure", { id: "overview", class: "plotbox" });
  overText = h("p", { id: "overview-summary", class: "muted", "aria-live": "polite" });
  overRows = h("tbody", { id: "overview-bins" }) as HTMLTableSectionElement;
  everySel = h(
    "select",
    { id: "overview-every" },
    h("option", { value: 3600 }, "hour"),
    h("option", { value: 86400, selected: true }, "day"),
    h("option", { value: 7 * 86400 }, "week"),
    h("option", { value: 30 * 86400 }, "30 days"),
  ) as HTMLSelectElement;
  everySel.value = "86400";
  everySel.addEventListener("change", () => void drawOverview());
  const show = h("button", { type: "button", id: "history-show", class: "primary" }, "Show");
  show.addEventListener("click", () => void load());
  const draw = h("button", { type: "button", id: "plot-draw" }, "Plot");
  draw.addEventListener("click", () => void drawPlot(Number(recs.value) || 200));
  varSel.addEventListener("change", () => {
    void drawPlot(Number(recs.value) || 200);
    void drawOverview();
  });
  root.append(
    h("h2", {}, "History"),
    h(
      "div",
      { class: "row wrap" },
      field("Repository of a sync folder", repoSel)[0],
      field("…or another repository", other)[0],
      field("Branch", branchIn)[0],
      show,
    ),
    msg,
    h(
      "table",
      { class: "commits", "aria-label": "Commits, newest first" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When (UTC)"), h("th", { scope: "col" }, "Snapshot"), h("th", { scope: "col" }, "Files"), h("th", { scope: "col" }, "Records"))),
      table,
    ),
    h("h3", {}, "Latest records"),
    h("div", { class: "row wrap" }, field("Variable", varSel)[0], field("Records", recs)[0], draw),
    plotBox,
    plotText,
    h(
      "details",
      { id: "plot-table" },
      h("summary", {}, "The values, as a table"),
      h(
        "table",
        { class: "commits", "aria-label": "The plotted values, one per record" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Record"), h("th", { scope: "col" }, "Value"))),
        plotRows,
      ),
    ),
    h("h3", {}, "Whole history"),
    h("div", { class: "row wrap" }, field("Mean per", everySel)[0]),
    overBox,
    overText,
    h(
      "details",
      { id: "overview-table" },
      h("summary", {}, "The values, as a table"),
      h(
        "table",
        { class: "commits", "aria-label": "Mean per bin over the whole history" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "From"),
            h("th", { scope: "col" }, "Values"),
            h("th", { scope: "col" }, "Min"),
            h("th", { scope: "col" }, "Mean"),
            h("th", { scope: "col" }, "Max"),
          ),
        ),
        overRows,
      ),
    ),
  );
}

/** Keep the repository list in step with the sync folders; reload when a new commit lands. */
export function historyStatus(s: StatusView): void {
  const repos = [...new Set(s.folders.map((f) => `${f.repo}\u0000${f.branch}`))];
  const key = repos.join("\n");
  if (key !== known) {
    known = key;
    const keep = repoSel.value;
    repoSel.replaceChildren(
      ...repos.map((r) => {
        const [repo] = r.split("\u0000");
        return h("option", { value: repo }, repo);
      }),
    );
    if (repos.some((r) => r.startsWith(keep + "\u0000"))) repoSel.value = keep;
  }
  const t = target();
  const folder = t && s.folders.find((f) => f.repo === t.repo && f.branch === t.branch);
  const tip = folder?.last_commit ?? "";
  if (tip && tip !== lastTip && !document.getElementById("history")!.hidden) {
    lastTip = tip;
    void load();
  }
}

function row(c: CommitView): HTMLTableRowElement {
  const files = c.files.length
    ? h("ul", {}, ...c.files.map((f) => h("li", {}, `${f.source} (${f.records})`)))
    : h("span", { class: "muted" }, c.by_floe ? "none" : c.message || "not made by Floe");
  return h(
    "tr",
    { "data-id": c.id },
    h("td", {}, c.time.replace("T", " ")),
    h("td", {}, h("code", { title: c.id }, c.short_id)),
    h("td", {}, files),
    h("td", { class: "num" }, String(c.records)),
  );
}

export async function load(): Promise<void> {
  const t = target();
  if (!t) {
    say(msg, "none", "Add a sync folder first, or type a repository.");
    return;
  }
  say(msg, "busy", `Reading ${t.repo}…`);
  try {
    const commits = await api.commits(t.repo, t.branch, 50);
    table.replaceChildren(...commits.map(row));
    lastTip = commits[0]?.id ?? "";
    say(msg, "ok", `${commits.length} most recent commit(s) of ${t.branch}`);
    const vars = await api.variables(t.repo, t.branch);
    variables = vars;
    const keep = varSel.value;
    varSel.replaceChildren(
      ...vars.map((v) => h("option", { value: v.path }, `${v.long_name ?? v.path} (${v.dims.join(", ")})`)),
    );
    if (vars.some((v) => v.path === keep)) varSel.value = keep;
    if (vars.length) await Promise.all([drawPlot(200), drawOverview()]);
  } catch (e) {
    say(msg, "error", e instanceof FloeError ? e.message : String(e));
  }
}

async function drawPlot(records: number): Promise<void> {
  const t = target();
  if (!t || !varSel.value) return;
  try {
    const s = await api.series(t.repo, t.branch, varSel.value, records);
    plotBox.replaceChildren(plot(s));
    setText(plotText, summary(s));
    plotRows.replaceChildren(...valueRows(s));
  } catch (e) {
    say(msg, "error", e instanceof FloeError ? e.message : String(e));
  }
}

function binRow(a: StatsAnswer, i: number): HTMLTableRowElement {
  const b = a.bins[i];
  const num = (v: number | null) => h("td", { class: "num" }, v === null ? "–" : fmt(v));
  return h(
    "tr",
    { "data-start": b.start, "data-count": b.count, "data-mean": b.mean ?? "" },
    h("td", {}, a.times ? when(b.start) : fmt(b.start)),
    h("td", { class: "num" }, String(b.count)),
    num(b.min),
    num(b.mean),
    num(b.max),
  );
}

/** The mean per bin over the whole history, from the statistics kept at ingest. */
async function drawOverview(): Promise<void> {
  const t = target();
  if (!t || !varSel.value) return;
  const units = variables.find((v) => v.path === varSel.value)?.units ?? null;
  try {
    const a = await api.overview(t.repo, t.branch, varSel.value, Number(everySel.value) || 86400);
    const width = widthWords(a.every ?? 86400);
    overBox.replaceChildren(plot(meansSeries(a, units), `${a.var}${units ? ` (${units})` : ""}, mean per ${width}`));
    overRows.replaceChildren(...a.bins.map((_, i) => binRow(a, i)));
    setText(overText, overviewSummary(a, units));
  } catch (e) {
    overBox.replaceChildren();
    overRows.replaceChildren();
    setText(overText, e instanceof FloeError ? e.message : String(e));
  }
}
