//! Damaged files never take the run down: thousands of deterministic truncations and
//! byte flips of real NetCDF-4 and NetCDF-3 files are opened and read in full; each
//! must end in a value or an error, never a panic or a hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use floe_tests::*;

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn read_everything(path: &std::path::Path) -> Result<usize, String> {
    let reader = floe_source::open(path).map_err(|e| e.to_string())?;
    let mut n = 0;
    for g in &reader.dataset().groups {
        for v in &g.variables {
            let start = vec![0; v.shape.len()];
            let data =
                reader.read(&g.path, &v.name, &start, &v.shape).map_err(|e| e.to_string())?;
            n += data.len_bytes();
        }
    }
    Ok(n)
}

fn mutate_and_read(format: &str, cases: u64) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "1", "--format", format]);
    let original = std::fs::read(&files(&src, "nc")[0]).unwrap();
    assert!(read_everything(std::path::Path::new(&files(&src, "nc")[0])).is_ok());
    let target = d.path().join("damaged.nc");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused) = (0, 0);
    for case in 0..cases {
        let mut bytes = original.clone();
        match case % 3 {
            0 => bytes.truncate((rng.next() % original.len() as u64) as usize),
            1 => {
                for _ in 0..1 + rng.next() % 8 {
                    let i = (rng.next() % bytes.len() as u64) as usize;
                    bytes[i] ^= 1 << (rng.next() % 8);
                }
            }
            _ => {
                // overwrite a run of bytes in the header region
                let start = (rng.next() % 2048.min(bytes.len() as u64)) as usize;
                for b in bytes.iter_mut().skip(start).take(16) {
                    *b = rng.next() as u8;
                }
            }
        }
        std::fs::write(&target, &bytes).unwrap();
        let t = Instant::now();
        match read_everything(&target) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        assert!(t.elapsed() < Duration::from_secs(20), "case {case} took {:?}", t.elapsed());
    }
    assert_eq!(ok + refused, cases);
    assert!(refused > 0, "no damaged file was refused: the mutations do nothing");
}

#[test]
fn damaged_netcdf4_files_give_errors_not_crashes() {
    mutate_and_read("nc4", 3000);
}

#[test]
fn damaged_netcdf3_files_give_errors_not_crashes() {
    mutate_and_read("nc3", 3000);
}
