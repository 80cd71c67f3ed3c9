//! A view of a source's records `from .. upto` along its append dimensions: what a
//! file that grew holds beyond what an earlier sync already took, and no more than
//! a live take has seen settle (a writer may be appending while Floe reads).

use std::collections::BTreeMap;

use crate::{Data, Dataset, SourceError, SourceReader};

/// `inner` with the first `skip[d]` records along each dimension `d` left out, and
/// (with `upto`) none from record `upto[d]` on: dimension sizes and variable shapes
/// shrink, reads are shifted.
pub struct Window {
    inner: Box<dyn SourceReader>,
    skip: BTreeMap<String, u64>,
    dataset: Dataset,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window").field("skip", &self.skip).finish_non_exhaustive()
    }
}

impl Window {
    pub fn new(
        inner: Box<dyn SourceReader>,
        skip: BTreeMap<String, u64>,
        upto: Option<&BTreeMap<String, u64>>,
    ) -> Window {
        let mut dataset = inner.dataset().clone();
        let size = |name: &str, n: u64| {
            let end = upto.and_then(|u| u.get(name)).map_or(n, |u| n.min(*u));
            end.saturating_sub(skip.get(name).copied().unwrap_or(0))
        };
        for g in &mut dataset.groups {
            for d in &mut g.dims {
                d.size = size(&d.name, d.size);
            }
            for v in &mut g.variables {
                for (name, n) in v.dims.iter().zip(v.shape.iter_mut()) {
                    *n = size(name, *n);
                }
            }
        }
        Window { inner, skip, dataset }
    }
}

impl SourceReader for Window {
    fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    fn read(
        &self,
        group: &str,
        variable: &str,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, SourceError> {
        let dims = self
            .dataset
            .group(group)
            .and_then(|g| g.variable(variable))
            .map(|v| v.dims.clone())
            .unwrap_or_default();
        let shifted: Vec<u64> = start
            .iter()
            .enumerate()
            .map(|(i, s)| s + dims.get(i).and_then(|d| self.skip.get(d)).copied().unwrap_or(0))
            .collect();
        self.inner.read(group, variable, &shifted, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Dim, Group, SourceFormat, VarKind, Variable};

    /// A reader whose `time` variable holds 0, 1, 2, … (as u8).
    struct Counting(Dataset);

    impl SourceReader for Counting {
        fn dataset(&self) -> &Dataset {
            &self.0
        }
        fn read(
            &self,
            _: &str,
            _: &str,
            start: &[u64],
            count: &[u64],
        ) -> Result<Data, SourceError> {
            Ok(Data::Fixed((start[0]..start[0] + count[0]).map(|x| x as u8).collect()))
        }
    }

    #[test]
    fn the_first_records_are_left_out() {
        let ds = Dataset {
            format: SourceFormat::ZarrV3,
            groups: vec![Group {
                path: "/".into(),
                attrs: Default::default(),
                dims: vec![Dim { name: "time".into(), size: 10, unlimited: true }],
                variables: vec![Variable {
                    name: "time".into(),
                    dims: vec!["time".into()],
                    shape: vec![10],
                    dtype: DType::U8,
                    attrs: Default::default(),
                    chunks: None,
                    kind: VarKind::Plain,
                    fill_value: None,
                }],
            }],
        };
        let s =
            Window::new(Box::new(Counting(ds.clone())), BTreeMap::from([("time".into(), 7)]), None);
        assert_eq!(s.dataset().groups[0].dims[0].size, 3);
        assert_eq!(s.dataset().groups[0].variables[0].shape, vec![3]);
        assert_eq!(s.read("/", "time", &[0], &[3]).unwrap(), Data::Fixed(vec![7, 8, 9]));
        assert_eq!(s.read("/", "time", &[1], &[1]).unwrap(), Data::Fixed(vec![8]));
        // records 4..6 only: what a live take saw settle
        let upto = BTreeMap::from([("time".to_string(), 6)]);
        let w =
            Window::new(Box::new(Counting(ds)), BTreeMap::from([("time".into(), 4)]), Some(&upto));
        assert_eq!(w.dataset().groups[0].dims[0].size, 2);
        assert_eq!(w.dataset().groups[0].variables[0].shape, vec![2]);
        assert_eq!(w.read("/", "time", &[0], &[2]).unwrap(), Data::Fixed(vec![4, 5]));
    }
}
