// A small line plot of a variable's latest records, or of its mean per bin over the
// whole history, as SVG.
import type { Series, StatsAnswer } from "./api";

const NS = "http://www.w3.org/2000/svg";

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function when(t: number): string {
  return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(":00Z", "Z");
}

/** Draw `s` into an SVG with a text summary for screen readers; `label` names what
 * the values are (the latest records, unless told). */
export function plot(s: Series, label?: string): SVGSVGElement {
  const W = 640;
  const H = 220;
  const pad = { l: 64, r: 12, t: 12, b: 40 };
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot" }) as SVGSVGElement;
  const n = s.values.length;
  const xs = s.times.length === n ? s.times : s.values.map((_, i) => s.first_index + i);
  const ok = s.values.map((v, i) => [xs[i], v] as const).filter((p): p is readonly [number, number] => p[1] !== null);
  const title = label ?? `${s.path}${s.units ? ` (${s.units})` : ""}, last ${n} records along ${s.dim}${perRecord(s)}`;
  svg.append(el("title", {}, title));
  if (ok.length === 0) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "All fill values: nothing to plot"));
    return svg;
  }
  let [x0, x1] = [Math.min(...ok.map((p) => p[0])), Math.max(...ok.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...ok.map((p) => p[1])), Math.max(...ok.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const X = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const Y = (y: number) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  svg.append(el("rect", { x: pad.l, y: pad.t, width: W - pad.l - pad.r, height: H - pad.t - pad.b, class: "frame" }));
  // a gap where a record is all fill
  let d = "";
  let pen = false;
  s.values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${X(xs[i]).toFixed(1)},${Y(v).toFixed(1)}`;
    pen = true;
  });
  svg.append(el("path", { d, class: "line" }));
  if (ok.length <= 60) for (const [x, y] of ok) svg.append(el("circle", { cx: X(x), cy: Y(y), r: 2.5, class: "dot" }));
  svg.append(el("text", { x: pad.l - 6, y: Y(y1) + 4, "text-anchor": "end" }, fmt(y1)));
  svg.append(el("text", { x: pad.l - 6, y: Y(y0) + 4, "text-anchor": "end" }, fmt(y0)));
  const xl = s.times.length === n ? when : (x: number) => `${s.dim}[${x}]`;
  svg.append(el("text", { x: pad.l, y: H - 12, "text-anchor": "start" }, xl(x0)));
  svg.append(el("text", { x: W - pad.r, y: H - 12, "text-anchor": "end" }, xl(x1)));
  return svg;
}

/** What each point of a 2-D (or more) variable is: ", the mean over range per record". */
function perRecord(s: Series): string {
  return s.reduced.length ? `, the mean over ${s.reduced.join(" and ")} per record` : "";
}

/** The numbers behind the plot, in words. */
export function summary(s: Series): string {
  const vals = s.values.filter((v): v is number => v !== null);
  if (vals.length === 0) return `${s.path}: the last ${s.values.length} records are all fill values.`;
  const last = vals[vals.length - 1];
  const u = s.units ? ` ${s.units}` : "";
  const gaps = s.values.length - vals.length;
  const gapText = gaps ? ` (${gaps} all fill, left as gaps)` : "";
  return `${s.path}: ${s.values.length} records${gapText}${perRecord(s)}, from ${fmt(Math.min(...vals))} to ${fmt(Math.max(...vals))}${u}; latest ${fmt(last)}${u}.`;
}

/** The plotted values as table rows: when (or the record's index) and the value. */
export function valueRows(s: Series): HTMLTableRowElement[] {
  const timed = s.times.length === s.values.length;
  return s.values.map((v, i) => {
    const tr = document.createElement("tr");
    tr.dataset.index = String(s.first_index + i);
    tr.dataset.value = v === null ? "" : String(v);
    const at = document.createElement("td");
    at.textContent = timed ? when(s.times[i]) : `${s.dim}[${s.first_index + i}]`;
    const val = document.createElement("td");
    val.className = "num";
    val.textContent = v === null ? "all fill" : fmt(v);
    tr.append(at, val);
    return tr;
  });
}

/** The series of bin means in `a`, to plot: a bin with no valid value is a gap. */
export function meansSeries(a: StatsAnswer, units: string | null): Series {
  return {
    path: a.var,
    dim: a.dim,
    units,
    first_index: 0,
    times: a.times ? a.bins.map((b) => b.start) : [],
    values: a.bins.map((b) => (b.count > 0 ? b.mean : null)),
    reduced: [],
  };
}

/** The width of a bin in words: "day", "3 hours". */
export function widthWords(seconds: number): string {
  const units: [number, string][] = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  const [u, name] = units.find(([u]) => seconds >= u && seconds % u === 0) ?? [1, "second"];
  const k = seconds / u;
  return k === 1 ? name : `${k} ${name}s`;
}

/** The overview in words. */
export function overviewSummary(a: StatsAnswer, units: string | null): string {
  const full = a.bins.filter((b) => b.count > 0 && b.mean !== null);
  const width = widthWords(a.every ?? 86400);
  if (full.length === 0) return `${a.var}: no valid values in ${a.files} file(s).`;
  const means = full.map((b) => b.mean as number);
  const u = units ? ` ${units}` : "";
  return (
    `${a.var}: mean per ${width}, ${a.bins.length} bin(s) from ${a.files} file(s), ` +
    `from ${fmt(Math.min(...means))} to ${fmt(Math.max(...means))}${u}; ` +
    `${full.length} with data.`
  );
}
