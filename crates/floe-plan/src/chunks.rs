use floe_core::model::DType;

/// Smallest chunk chosen along an append axis (unless the target is smaller).
pub(crate) const MIN_CHUNK_BYTES: u64 = 16 << 10;

/// Choose a chunk shape of about `target` bytes.
///
/// Non-append axes keep their full extent unless that alone exceeds the target (then
/// the largest is halved until it fits); the append axis takes as many records as
/// fit in the target, but no more than `appends` files' worth (the first file's record
/// count times `appends`, and no less than [`MIN_CHUNK_BYTES`]), so a chunk is rewritten
/// by a bounded number of appends.
/// Strings count 16 bytes an element.
pub fn choose_chunks(
    shape: &[u64],
    dtype: DType,
    append_axis: Option<usize>,
    target: u64,
    appends: u64,
) -> Vec<u64> {
    let item = dtype.size().unwrap_or(16) as u64;
    let target = target.max(item);
    let mut chunks: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
    if let Some(ax) = append_axis {
        chunks[ax] = 1;
    }
    let bytes = |c: &[u64]| c.iter().product::<u64>() * item;
    while bytes(&chunks) > target {
        let Some((i, _)) = chunks
            .iter()
            .enumerate()
            .filter(|(i, c)| Some(*i) != append_axis && **c > 1)
            .max_by_key(|(_, c)| **c)
        else {
            break;
        };
        chunks[i] = chunks[i].div_ceil(2);
    }
    if let Some(ax) = append_axis {
        let per_record = bytes(&chunks);
        let by_size = (target / per_record).max(1);
        let by_appends = shape[ax].max(1).saturating_mul(appends.max(1));
        // ... but never tiny chunks because the first file happened to be short
        let floor = (MIN_CHUNK_BYTES / per_record).max(1);
        chunks[ax] = by_size.min(by_appends.max(floor));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_instrument_arrays() {
        // a scalar time series: eight files' worth of records, at least 16 KiB
        assert_eq!(choose_chunks(&[96], DType::F32, Some(0), 4 << 20, 8), vec![4096]);
        assert_eq!(choose_chunks(&[960], DType::F32, Some(0), 4 << 20, 8), vec![7680]);
        // a file of one record does not make tiny chunks for ever
        assert_eq!(choose_chunks(&[1], DType::F64, Some(0), 4 << 20, 8), vec![2048]);
        // unbounded appends: records fill the target size
        assert_eq!(choose_chunks(&[96], DType::F32, Some(0), 4 << 20, u64::MAX), vec![1 << 20]);
        // a waveform of 1024 samples per record: the size limit comes first
        assert_eq!(choose_chunks(&[96, 1024], DType::F32, Some(0), 4 << 20, 64), vec![1024, 1024]);
        // a static 2-D field that fits
        assert_eq!(choose_chunks(&[100, 200], DType::F64, None, 4 << 20, 8), vec![100, 200]);
    }

    proptest! {
        #[test]
        fn chunks_are_within_target_and_nonempty(
            shape in proptest::collection::vec(1u64..5000, 0..4),
            axis_pick in 0usize..4,
            target in 1024u64..(16 << 20),
            appends in 1u64..64,
        ) {
            let axis = if shape.is_empty() { None } else { Some(axis_pick % shape.len()) };
            let c = choose_chunks(&shape, DType::F64, axis, target, appends);
            prop_assert_eq!(c.len(), shape.len());
            prop_assert!(c.iter().all(|&x| x >= 1));
            let bytes: u64 = c.iter().product::<u64>() * 8;
            // either within target, or each axis is already down to one element
            prop_assert!(bytes <= target.max(8) || c.iter().enumerate().all(|(i, &x)| x == 1 || Some(i) == axis));
            for (i, (&ci, &si)) in c.iter().zip(&shape).enumerate() {
                if Some(i) != axis { prop_assert!(ci <= si); }
                // along the append axis, at most `appends` files share a chunk
                if Some(i) == axis {
                    let floor = (MIN_CHUNK_BYTES / (c.iter().enumerate().filter(|(j, _)| Some(*j) != axis).map(|(_, x)| *x).product::<u64>() * 8)).max(1);
                    prop_assert!(ci <= (si * appends).max(floor));
                }
            }
        }
    }
}
