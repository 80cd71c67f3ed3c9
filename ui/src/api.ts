// The only module that talks to the Tauri runtime. Every other module calls these
// typed functions; failures arrive as FloeError {code, message}.
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { asErrorCode, type ErrorCode } from "./codes";

/** A file Floe could not sync: left where it is, listed until fixed, removed or ignored. */
export interface RejectedFile {
  /** Relative to the folder. */
  file: string;
  code: string;
  /** Why, and what to do. */
  message: string;
  /** When Floe first refused it (UTC). */
  since: string;
  /** Marked ignored: listed, not counted. */
  ignored: boolean;
}

export interface FolderView {
  path: string;
  repo: string;
  branch: string;
  state: string;
  headline: string;
  detail: string;
  problem: string | null;
  needs_attention: boolean;
  paused: boolean;
  files_pending: number;
  bytes_pending: number;
  files_ingested: number;
  throughput: number;
  last_commit: string | null;
  /** The last verification in a sentence (none since the engine started). */
  verification: string | null;
  /** Files the validation gate holds (empty: it holds nothing). */
  held_files: string[];
  /** Where the folder went on after a schema drift, in a sentence (none: it did not). */
  drift: string | null;
  /** The last retention run (keep) in a sentence (none since the engine started). */
  retention: string | null;
  /** Files Floe could not sync; those not ignored make the folder need attention. */
  rejected: RejectedFile[];
}

/** What a release or drop at the validation gate did. */
export interface GateDecision {
  branch: string;
  files: string[];
  snapshot: string;
}

export interface StatusView {
  engine: "here" | "daemon";
  overall: "synced" | "syncing" | "paused" | "attention";
  overall_label: string;
  folders: FolderView[];
}

export interface FolderConfig {
  path: string;
  repo: string;
  branch: string;
  group: string;
  patterns: string[];
  append_dims: string[];
  paused: boolean;
  /** Follow open NetCDF-3 files live, a take at most every this many seconds. */
  live_every_secs?: number | null;
}

export interface LoginField {
  var: string;
  label: string;
  secret: boolean;
  required: boolean;
}

export interface NewFolder {
  folder: string;
  repo: string;
  branch: string;
  group: string;
  patterns: string[];
  append_dims: string[];
  live_every_secs: number | null;
  /** Read each commit back from the storage and compare it with the files. */
  verify_after_commit: boolean;
  /** Verify the whole folder every this many hours (none: never). */
  verify_every_hours: number | null;
  /** Commit through a validation gate with these checks (none: straight to the branch). */
  gate: GateOptions | null;
  /** What a file that drifts does: refused (stop), or the folder goes on in a new branch or repository. */
  on_drift: OnDrift;
  /** Global attributes whose change starts a tagged settings period. */
  tag_on_change: string[];
  /** Keep this much history, e.g. "90d" (none: all of it); older snapshots expire. */
  keep: string | null;
  login: Record<string, string>;
  check: boolean;
}

export type OnDrift = "stop" | "branch" | "repo";

/** The validation gate's checks; schema and duplicates are on by default. */
export interface GateOptions {
  schema?: boolean;
  duplicates?: boolean;
  valid_range?: boolean;
}

export interface Added {
  folder: FolderConfig;
  checks: string[];
  engine_reloaded: boolean;
}

export interface FileView {
  source: string;
  size: number;
  format: string;
  records: string;
}

export interface CommitView {
  id: string;
  short_id: string;
  time: string;
  message: string;
  files: FileView[];
  records: number;
  by_floe: boolean;
}

export interface Variable {
  path: string;
  dims: string[];
  shape: number[];
  units: string | null;
  long_name: string | null;
}

export interface Series {
  path: string;
  dim: string;
  units: string | null;
  first_index: number;
  times: number[];
  /** Per record: its mean over `reduced` (a 2-D variable), null when all fill. */
  values: (number | null)[];
  /** The dimensions each record is averaged over (empty for a 1-D variable). */
  reduced: string[];
}

/** One bin of a statistics series (`floe stats --every`). */
export interface BinStats {
  start: number;
  end: number;
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

/** `floe stats`'s answer, from the statistics Floe keeps at ingest. */
export interface StatsAnswer {
  repo: string;
  branch: string;
  snapshot: string;
  var: string;
  dim: string;
  /** Bin edges are times (seconds since 1970 UTC). */
  times: boolean;
  every: number | null;
  files: number;
  files_read: number;
  bins: BinStats[];
}

export type MountState = "mounted" | "starting" | "dead" | "not_mounted";

/** A Floe mount, served by a process of its own (it outlives the app). */
export interface MountView {
  mountpoint: string;
  repo: string;
  state: MountState;
  state_label: string;
  pid: number | null;
  program: string | null;
  since: string | null;
  at_login: boolean;
  log: string | null;
}

/** One repository under a prefix (`floe repos`). */
export interface RepoSummary {
  path: string;
  url: string;
  latest_commit: string | null;
  branches: number;
  tags: number;
  bytes: number | null;
  error: string | null;
}

export interface ReposView {
  url: string;
  repositories: RepoSummary[];
  unlisted: { prefix: string; error: string }[];
  listings: number;
}

/** A failure as the Rust side reports it. */
export class FloeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    if (e && typeof e === "object" && "message" in e) {
      const o = e as { code?: string; message: string };
      throw new FloeError(asErrorCode(o.code), o.message);
    }
    throw new FloeError("internal", String(e));
  }
}

export const api = {
  status: () => call<StatusView>("status"),
  folders: () => call<FolderConfig[]>("folders"),
  loginFields: (repo: string) => call<LoginField[]>("login_fields", { repo }),
  addFolder: (folder: NewFolder) => call<Added>("add_folder", { folder }),
  removeFolder: (path: string) => call<FolderConfig>("remove_folder", { path }),
  pause: (folder: string | null) => call<string>("pause", { folder }),
  resume: (folder: string | null) => call<string>("resume", { folder }),
  ignoreFile: (path: string, file: string, undo: boolean) =>
    call<string[]>("ignore_file", { path, file, undo }),
  gateDecide: (path: string, release: boolean) =>
    call<GateDecision>("gate_decide", { path, release }),
  commits: (repo: string, branch: string, limit: number) =>
    call<CommitView[]>("commits", { repo, branch, limit }),
  variables: (repo: string, branch: string) => call<Variable[]>("variables", { repo, branch }),
  series: (repo: string, branch: string, variable: string, records: number) =>
    call<Series>("series", { repo, branch, variable, records }),
  overview: (repo: string, branch: string, variable: string, everyS: number) =>
    call<StatsAnswer>("overview", { repo, branch, variable, everyS }),
  mounts: () => call<MountView[]>("mounts"),
  mount: (repo: string, mountpoint: string, atLogin: boolean) =>
    call<MountView>("mount", { repo, mountpoint, atLogin }),
  setMountAtLogin: (mountpoint: string, on: boolean) =>
    call<MountView>("set_mount_at_login", { mountpoint, on }),
  unmount: (mountpoint: string) => call<void>("unmount", { mountpoint }),
  repos: (url: string) => call<ReposView>("repos", { url }),
  openFolder: (path: string) => call<void>("open_folder", { path }),
  pickFolder: () => call<string | null>("pick_folder"),
  startAtLogin: () => call<boolean>("start_at_login"),
  setStartAtLogin: (enabled: boolean) => call<boolean>("set_start_at_login", { enabled }),
  uiReady: () => call<void>("ui_ready"),
  startFolder: () => call<string | null>("start_folder"),
};

/** A start of the app named a folder: offer to add it. */
export function onAddFolder(f: (folder: string) => void): void {
  void listen<string>("add-folder", (e) => f(e.payload));
}

/** Status pushed by the app every second. */
export function onStatus(f: (s: StatusView) => void): void {
  void listen<StatusView>("status", (e) => f(e.payload));
}

/** The engine could not be reached or started. */
export function onStatusError(f: (e: FloeError) => void): void {
  void listen<{ code: string; message: string }>("status-error", (e) =>
    f(new FloeError(asErrorCode(e.payload.code), e.payload.message)),
  );
}
