//! The records a source holds, and a digest of their values.
//!
//! A file that grew after Floe took its first records (a logger appending to an
//! hourly file, a copy tool that wrote a file twice) must not be mistaken for a
//! file whose records changed. [`digests`] hashes every record variable's stored
//! values over the first records of a source, so the digest of "the records taken
//! then" can be recomputed from the file as it is now and compared: equal means the
//! file only grew. One pass gives the digest at several record counts (the records
//! taken before, and all the file holds now).

use std::collections::BTreeMap;

use crate::{Data, Dataset, SourceError, SourceReader, Variable};

/// Records per append dimension: a dimension's size, or how many records of it a
/// sync took.
pub type Counts = BTreeMap<String, u64>;

/// How many records `ds` holds along each of `dims`.
pub fn counts(ds: &Dataset, dims: &[String]) -> Counts {
    dims.iter()
        .map(|d| {
            let n =
                ds.groups.iter().flat_map(|g| &g.dims).find(|x| &x.name == d).map_or(0, |x| x.size);
            (d.clone(), n)
        })
        .collect()
}

/// Whether `a` holds fewer records than `b` along some dimension of `b`.
pub fn fewer(a: &Counts, b: &Counts) -> bool {
    b.iter().any(|(d, n)| a.get(d).copied().unwrap_or(0) < *n)
}

/// The digest of every record variable (a variable with one of `dims`) over records
/// `0 .. mark[d]`, for each of `marks`, reading at most `slab_bytes` at a time.
///
/// A variable's values are hashed record by record along its first append
/// dimension (for a variable whose outer dimension is the record dimension, that is
/// its bytes in C order), so the digest does not depend on how the reads were cut.
/// Names, types and the other dimensions' sizes are hashed too: a variable that
/// appeared, went away or changed type changes the digest.
pub fn digests(
    reader: &dyn SourceReader,
    dims: &[String],
    marks: &[&Counts],
    slab_bytes: u64,
) -> Result<Vec<String>, SourceError> {
    let mut total: Vec<blake3::Hasher> = marks.iter().map(|_| blake3::Hasher::new()).collect();
    let ds = reader.dataset();
    let mut vars: Vec<(&str, &Variable)> = ds
        .groups
        .iter()
        .flat_map(|g| g.variables.iter().map(move |v| (g.path.as_str(), v)))
        .collect();
    vars.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    for (group, v) in vars {
        let axes: Vec<usize> = (0..v.dims.len()).filter(|i| dims.contains(&v.dims[*i])).collect();
        let Some(&axis) = axes.first() else { continue };
        let per_mark = if axes.len() == 1 {
            variable_digests(reader, group, v, axis, marks, slab_bytes)?
        } else {
            // records along two append dimensions at once (rare): each mark on its own
            let mut out = Vec::new();
            for m in marks {
                out.extend(variable_digests_2d(reader, group, v, &axes, m, slab_bytes)?);
            }
            out
        };
        for (t, h) in total.iter_mut().zip(per_mark) {
            t.update(group.as_bytes());
            t.update(b"/");
            t.update(v.name.as_bytes());
            t.update(&[0]);
            t.update(h.as_bytes());
        }
    }
    Ok(total.into_iter().map(|h| h.finalize().to_hex().to_string()).collect())
}

/// A variable's hash, as of its name, type and the sizes of its other dimensions.
fn variable_hasher(v: &Variable, axes: &[usize]) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(format!("{:?}", v.dtype).as_bytes());
    for (i, n) in v.shape.iter().enumerate() {
        if !axes.contains(&i) {
            h.update(&n.to_le_bytes());
        }
    }
    h
}

/// One append axis: a single pass, the hash taken at each mark.
fn variable_digests(
    reader: &dyn SourceReader,
    group: &str,
    v: &Variable,
    axis: usize,
    marks: &[&Counts],
    slab_bytes: u64,
) -> Result<Vec<blake3::Hash>, SourceError> {
    let dim = &v.dims[axis];
    let size = v.shape[axis];
    let ends: Vec<u64> = marks.iter().map(|m| m.get(dim).copied().unwrap_or(0).min(size)).collect();
    let mut order: Vec<usize> = (0..ends.len()).collect();
    order.sort_by_key(|i| ends[*i]);
    let mut h = variable_hasher(v, &[axis]);
    let mut out = vec![blake3::Hash::from_bytes([0; 32]); ends.len()];
    // marks in increasing order: each feeds on from where the last stopped
    let slab = Slab { group, v, shape: &v.shape, axis, slab_bytes };
    let mut at = 0u64;
    for i in order {
        slab.feed(reader, &mut h, at, ends[i])?;
        at = ends[i];
        out[i] = h.finalize();
    }
    Ok(out)
}

/// Several append axes: the region `0 .. mark` along each, in slabs along the first.
fn variable_digests_2d(
    reader: &dyn SourceReader,
    group: &str,
    v: &Variable,
    axes: &[usize],
    mark: &Counts,
    slab_bytes: u64,
) -> Result<Vec<blake3::Hash>, SourceError> {
    let mut shape = v.shape.clone();
    for &a in axes {
        shape[a] = mark.get(&v.dims[a]).copied().unwrap_or(0).min(shape[a]);
    }
    let axis = axes[0];
    let mut h = variable_hasher(v, axes);
    for &a in &axes[1..] {
        h.update(&shape[a].to_le_bytes());
    }
    let slab = Slab { group, v, shape: &shape, axis, slab_bytes };
    slab.feed(reader, &mut h, 0, shape[axis])?;
    Ok(vec![h.finalize()])
}

/// Reads of one variable's region `shape` in slabs along `axis`, at most
/// `slab_bytes` each.
struct Slab<'a> {
    group: &'a str,
    v: &'a Variable,
    shape: &'a [u64],
    axis: usize,
    slab_bytes: u64,
}

impl Slab<'_> {
    /// Feed records `from .. to` along the axis (an empty region feeds nothing).
    fn feed(
        &self,
        reader: &dyn SourceReader,
        h: &mut blake3::Hasher,
        from: u64,
        to: u64,
    ) -> Result<(), SourceError> {
        let others = self.shape.iter().enumerate().filter(|(i, _)| *i != self.axis);
        if others.clone().any(|(_, n)| *n == 0) {
            return Ok(());
        }
        let item = self.v.dtype.size().unwrap_or(16) as u64;
        let per_record: u64 = others.map(|(_, n)| *n).product::<u64>() * item;
        let step = (self.slab_bytes / per_record.max(1)).max(1);
        let mut at = from;
        while at < to {
            let take = step.min(to - at);
            let mut start = vec![0u64; self.shape.len()];
            let mut count = self.shape.to_vec();
            start[self.axis] = at;
            count[self.axis] = take;
            let data = reader.read(self.group, &self.v.name, &start, &count)?;
            feed_records(h, &data, &count, self.axis, item as usize);
            at += take;
        }
        Ok(())
    }
}

/// Feed a slab of shape `count` (C order) record by record along `axis`: for each
/// index along the axis, the elements that have it, in C order.
fn feed_records(h: &mut blake3::Hasher, data: &Data, count: &[u64], axis: usize, item: usize) {
    let outer: usize = count[..axis].iter().product::<u64>() as usize;
    let span = count[axis] as usize;
    let inner: usize = count[axis + 1..].iter().product::<u64>() as usize;
    match data {
        Data::Fixed(bytes) if outer == 1 => {
            h.update(bytes);
        }
        Data::Fixed(bytes) => {
            let block = inner * item;
            for r in 0..span {
                for o in 0..outer {
                    let at = (o * span + r) * block;
                    h.update(bytes.get(at..at + block).unwrap_or_default());
                }
            }
        }
        Data::Strings(strings) => {
            for r in 0..span {
                for o in 0..outer {
                    let at = (o * span + r) * inner;
                    for s in strings.get(at..at + inner).unwrap_or_default() {
                        h.update(&(s.len() as u64).to_le_bytes());
                        h.update(s.as_bytes());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Dim, Group, SourceFormat, VarKind};

    /// `time(time)` as u8 `0, 1, 2, ...` and `obs(range, time)` (record dimension
    /// inner) as u16 `range * 100 + time`, with `values[i]` overriding record `i`.
    struct Grid {
        ds: Dataset,
        bump: Option<u64>,
    }

    fn grid(records: u64, bump: Option<u64>) -> Grid {
        let var = |name: &str, dims: &[&str], shape: Vec<u64>, dtype| Variable {
            name: name.into(),
            dims: dims.iter().map(|d| d.to_string()).collect(),
            shape,
            dtype,
            attrs: Default::default(),
            chunks: None,
            kind: VarKind::Plain,
            fill_value: None,
        };
        Grid {
            ds: Dataset {
                format: SourceFormat::Netcdf3Classic,
                groups: vec![Group {
                    path: "/".into(),
                    attrs: Default::default(),
                    dims: vec![
                        Dim { name: "time".into(), size: records, unlimited: true },
                        Dim { name: "range".into(), size: 3, unlimited: false },
                    ],
                    variables: vec![
                        var("time", &["time"], vec![records], DType::U8),
                        var("obs", &["range", "time"], vec![3, records], DType::U16),
                        var("site", &["range"], vec![3], DType::U8),
                    ],
                }],
            },
            bump,
        }
    }

    impl SourceReader for Grid {
        fn dataset(&self) -> &Dataset {
            &self.ds
        }
        fn read(
            &self,
            _: &str,
            v: &str,
            start: &[u64],
            count: &[u64],
        ) -> Result<Data, SourceError> {
            let value = |t: u64| if Some(t) == self.bump { t + 50 } else { t };
            Ok(Data::Fixed(match v {
                "time" => (start[0]..start[0] + count[0]).map(|t| value(t) as u8).collect(),
                "obs" => {
                    let mut out = Vec::new();
                    for r in start[0]..start[0] + count[0] {
                        for t in start[1]..start[1] + count[1] {
                            out.extend(((r * 100 + value(t)) as u16).to_le_bytes());
                        }
                    }
                    out
                }
                _ => vec![1, 2, 3],
            }))
        }
    }

    fn at(n: u64) -> Counts {
        BTreeMap::from([("time".to_string(), n)])
    }

    #[test]
    fn a_file_that_only_grew_gives_the_same_digest_over_its_first_records() {
        let dims = vec!["time".to_string()];
        let small = grid(5, None);
        let grown = grid(9, None);
        let then = digests(&small, &dims, &[&at(5)], 1 << 20).unwrap();
        // one pass over the grown file: the first 5 records, then all 9
        let now = digests(&grown, &dims, &[&at(5), &at(9)], 1 << 20).unwrap();
        assert_eq!(then[0], now[0]);
        assert_ne!(now[0], now[1]);
        // however the reads are cut (2 bytes: one record of `obs` per read at most)
        let cut = digests(&grown, &dims, &[&at(9), &at(5)], 2).unwrap();
        assert_eq!(cut, vec![now[1].clone(), now[0].clone()]);
        assert_eq!(counts(grown.dataset(), &dims), at(9));
        assert!(fewer(&at(4), &at(5)) && !fewer(&at(9), &at(5)));
    }

    #[test]
    fn a_changed_record_changes_the_digest() {
        let dims = vec!["time".to_string()];
        let then = digests(&grid(5, None), &dims, &[&at(5)], 1 << 20).unwrap();
        for bump in 0..5 {
            let now = digests(&grid(9, Some(bump)), &dims, &[&at(5)], 1 << 20).unwrap();
            assert_ne!(then, now, "record {bump} changed");
        }
        // a record after those taken may be anything
        let later = digests(&grid(9, Some(7)), &dims, &[&at(5)], 1 << 20).unwrap();
        assert_eq!(then, later);
    }
}
