//! The crates keep the two pipelines' layering (README "Layout"): sync is
//! core → source → plan → store → sync → engine → api → cli/app, mount is
//! store → mount → fuse → api. A crate may use only crates of a lower layer; the pure
//! planner builds without the NetCDF/HDF5/Zarr readers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's layer. A crate missing here fails the test: a new crate
/// has to be placed in the picture on purpose.
const LAYERS: &[(&str, u32)] = &[
    ("floe-core", 0),
    ("floe-source", 1),
    ("floe-plan", 2),
    ("floe-store", 3),
    ("floe-sync", 4),
    ("floe-mount", 4),
    ("floe-engine", 5),
    ("floe-fuse", 5),
    ("floe-api", 6),
    ("floe-cli", 7),
    ("floe-desktop", 7),
    ("floe-tests", 8),
];

/// Crates that would pull a format reader into whatever uses them.
const READERS: &[&str] = &["netcdf-reader", "hdf5-reader", "zarrs", "floe-source"];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every workspace crate with the names of its normal (not dev) dependencies.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let meta = metadata();
    let packages = meta["packages"].as_array().expect("packages");
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("name").to_string())
                .collect();
            (p["name"].as_str().expect("name").to_string(), deps)
        })
        .collect()
}

#[test]
fn no_crate_imports_one_above_it() {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let deps = dependencies();
    assert!(deps.len() >= LAYERS.len() - 1, "cargo metadata found {} crates", deps.len());
    let mut wrong = Vec::new();
    for (krate, uses) in &deps {
        let Some(&own) = layer.get(krate.as_str()) else {
            panic!("{krate} is not placed in LAYERS; give it its layer in the pipelines");
        };
        for dep in uses.iter().filter(|d| d.starts_with("floe-")) {
            let theirs = layer.get(dep.as_str()).copied().unwrap_or(u32::MAX);
            if theirs >= own {
                wrong.push(format!("{krate} (layer {own}) uses {dep} (layer {theirs})"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_planner_builds_without_the_readers() {
    let deps = dependencies();
    for krate in ["floe-core", "floe-plan"] {
        let uses = &deps[krate];
        let readers: Vec<_> = uses.iter().filter(|d| READERS.contains(&d.as_str())).collect();
        assert!(readers.is_empty(), "{krate} depends on the readers {readers:?}");
    }
}

/// Rust sources under `dir`, recursively.
fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.ends_with("node_modules") && !p.ends_with("target") {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_shipped_crate_can_install_a_fault_hook() {
    // floe_core::fault: the shipped binaries run with NoFaults; only the crash tests'
    // own binary (tests/src/bin/floe-faulty.rs) implements the trait otherwise.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut files = Vec::new();
    for dir in ["crates", "fuse", "src-tauri"] {
        sources(&root.join(dir), &mut files);
    }
    let hooks: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .filter(|l| {
                    l.contains("impl Faults for") && !l.contains("impl Faults for NoFaults")
                })
                .map(|l| format!("{}: {}", f.display(), l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(files.len() > 50, "found only {} sources", files.len());
    assert!(hooks.is_empty(), "a shipped crate implements a fault hook:\n{}", hooks.join("\n"));
}
