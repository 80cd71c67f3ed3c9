// History: a repository's commits with their provenance, and a plot of a variable's
// latest records.
import { api, FloeError, type CommitView, type StatusView } from "./api";
import { field, h, say, setText } from "./dom";
import { plot, summary } from "./plot";

let repoSel: HTMLSelectElement;
let other: HTMLInputElement;
let branchIn: HTMLInputElement;
let table: HTMLTableSectionElement;
let msg: HTMLElement;
let varSel: HTMLSelectElement;
let plotBox: HTMLElement;
let plotText: HTMLElement;
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
  const show = h("button", { type: "button", id: "history-show", class: "primary" }, "Show");
  show.addEventListener("click", () => void load());
  const draw = h("button", { type: "button", id: "plot-draw" }, "Plot");
  draw.addEventListener("click", () => void drawPlot(Number(recs.value) || 200));
  varSel.addEventListener("change", () => void drawPlot(Number(recs.value) || 200));
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
    const keep = varSel.value;
    varSel.replaceChildren(
      ...vars.map((v) => h("option", { value: v.path }, `${v.long_name ?? v.path} (${v.dims.join(", ")})`)),
    );
    if (vars.some((v) => v.path === keep)) varSel.value = keep;
    if (vars.length) await drawPlot(200);
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
  } catch (e) {
    say(msg, "error", e instanceof FloeError ? e.message : String(e));
  }
}
