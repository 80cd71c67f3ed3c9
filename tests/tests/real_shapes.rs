//! Files shaped like real instruments' and products' (tests/python/real_shapes.py):
//! each is ingested, and xarray reads the repository as it reads the sources
//! (decoded, NaN-aware; stored values bit for bit; times to the nanosecond), or, for
//! the types Zarr v3 cannot hold, refused with a message naming the variable and
//! its type, the file left where it is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use floe_tests::*;

/// Generate `shape` into a fresh folder; return (tempdir, sources, repo).
fn shape(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let r = py("real_shapes.py", &[name, src.to_str().unwrap()]);
    assert_eq!(r.code, 0, "real_shapes.py {name}: {}\n{}", r.stdout, r.stderr);
    let repo = d.path().join("repo");
    (d, src, repo)
}

/// Sync every file of `shape` and compare the repository with all of them.
fn ingests_exactly(name: &str, files_expected: usize) {
    let (_d, src, repo) = shape(name);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{name}: {report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), files_expected, "{name}: {report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn cfradial_ppi_volumes_with_per_volume_units_and_microsecond_rays() {
    // ten volumes, rays sharing seconds, each volume in its own `seconds since`
    ingests_exactly("cfradial_ppi", 10);
}

#[test]
fn cfradial_rhi_volumes_whose_ray_times_step_back() {
    ingests_exactly("cfradial_rhi", 3);
}

#[test]
fn satellite_granules_with_a_fixed_time_of_length_one() {
    let (_d, src, repo) = shape("granule");
    let first = files(&src, "nc")[0].clone();
    let inspect = floe(&["inspect", &first]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(inspect.stdout.contains("append dimensions: time"), "{}", inspect.stdout);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"]["time"], 3, "{report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn a_table_without_a_record_dimension_is_stored_whole_once() {
    let (_d, src, repo) = shape("table");
    let (code, report) = sync_json(&src, &repo, &[]);
    // table_a stored, table_b (the same) skipped, table_z_recal refused as drift
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["already_ingested"], serde_json::json!(["table_b.nc"]), "{report}");
    let rej = rejected(&report);
    assert_eq!(rej, vec![("table_z_recal.nc".to_string(), "schema_drift".to_string())]);
    let msg = report["rejected"][0]["message"].as_str().unwrap();
    assert!(msg.contains("no record dimension") && msg.contains("--group"), "{msg}");
    assert!(msg.contains("--append-dim"), "{msg}");
    assert!(src.join("table_z_recal.nc").exists(), "a refused file stays where it is");
    assert_repo_equals(&repo, &[src.join("table_a.nc").to_string_lossy().into_owned()], &[]);
    // and again: nothing new is written
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report["commits"].as_array().unwrap().is_empty(), "{report}");
}

#[test]
fn fill_values_of_every_kind() {
    // _FillValue with missing_value, a missing_value list, NaN, a char fill, _Unsigned
    ingests_exactly("fills", 3);
}

#[test]
fn attributes_with_newlines_numeric_arrays_and_strings() {
    ingests_exactly("attrs", 3);
}

#[test]
fn netcdf3_cdf5_with_64_bit_and_unsigned_types() {
    ingests_exactly("cdf5", 3);
}

#[test]
fn big_endian_netcdf4_variables() {
    ingests_exactly("bigendian", 3);
}

#[test]
fn scalar_and_per_record_string_variables() {
    ingests_exactly("scalar_string", 3);
}

#[test]
fn an_enum_is_stored_as_its_integers_with_cf_flags() {
    ingests_exactly("enum", 2);
}

/// The NetCDF-4 types Zarr v3 cannot hold: refused, naming the variable and type.
fn refused(name: &str, variable: &str, type_words: &str) {
    let (_d, src, repo) = shape(name);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "{report}");
    let rej = rejected(&report);
    assert_eq!(rej.len(), 2, "{report}");
    assert!(rej.iter().all(|(_, c)| c == "bad_source"), "{report}");
    let msg = report["rejected"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("`{variable}`")) && msg.contains(type_words), "{msg}");
    assert!(msg.contains("Drop the variable"), "the remedy: {msg}");
    for f in files(&src, "nc") {
        assert!(Path::new(&f).exists(), "left where it is: {f}");
    }
}

#[test]
fn compound_vlen_and_opaque_types_are_refused_by_name() {
    refused("compound", "wind", "compound {speed: float, dir: float}");
    refused("vlen", "echoes", "vlen of int");
    refused("opaque", "blob", "opaque (4 bytes)");
}
