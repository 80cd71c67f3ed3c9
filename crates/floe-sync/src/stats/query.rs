//! Which bins a window or series has, and which files answer from their rows
//! alone: a file inside one bin adds its row; only a file a bin edge cuts through
//! (or the window's) is read. Pure: no storage here.

use super::table::Span;

/// Seconds in a day: series of times start at midnight UTC of the first day, as
/// pandas' `resample` bins them by default (`origin="start_day"`).
const DAY: f64 = 86_400.0;

/// The window `[lo, hi)` cut into bins of `every` from `origin` (one bin without).
#[derive(Debug, Clone, PartialEq)]
pub struct Binning {
    pub lo: f64,
    pub hi: f64,
    pub origin: f64,
    pub every: Option<f64>,
    pub bins: usize,
    /// No `to` was given: the window ends just after the last record.
    pub open_end: bool,
}

impl Binning {
    /// `from`/`to` (`None`: from the first or through the last record) over the
    /// rows' times; `days` aligns bins to midnight (times in seconds).
    pub fn new(
        from: Option<f64>,
        to: Option<f64>,
        every: Option<f64>,
        spans: &[Span],
        days: bool,
    ) -> Binning {
        let times = || {
            spans
                .iter()
                .filter(|s| s.records > 0)
                .flat_map(|s| [s.t_min, s.t_max])
                .filter(|t| !t.is_nan())
        };
        let first = times().fold(f64::INFINITY, f64::min);
        let last = times().fold(f64::NEG_INFINITY, f64::max);
        let lo = from.unwrap_or(first);
        // just after the last record, so that it is inside the half-open window
        let hi = to.unwrap_or(if last.is_finite() { last.next_up() } else { f64::INFINITY });
        let open_end = to.is_none();
        let Some(every) = every.filter(|e| *e > 0.0) else {
            let bins = usize::from(lo.is_finite() || hi.is_finite());
            return Binning { lo, hi, origin: lo, every: None, bins, open_end };
        };
        if !lo.is_finite() {
            return Binning { lo, hi, origin: 0.0, every: Some(every), bins: 0, open_end };
        }
        // the first bin is the one holding `lo`, counted from midnight
        let day = if days { (lo / DAY).floor() * DAY } else { lo };
        let origin = day + ((lo - day) / every).floor() * every;
        let bins = if hi <= lo || !hi.is_finite() {
            0
        } else {
            ((hi - origin) / every).ceil().max(0.0) as usize
        };
        Binning { lo, hi, origin, every: Some(every), bins, open_end }
    }

    /// The bin of a time (`None`: outside the window, or no time).
    pub fn bin(&self, t: f64) -> Option<usize> {
        if t.is_nan() || t < self.lo || t >= self.hi {
            return None;
        }
        let Some(every) = self.every else { return Some(0) };
        let k = ((t - self.origin) / every).floor();
        (k >= 0.0 && (k as usize) < self.bins).then_some(k as usize)
    }

    /// Where bin `k` starts and ends.
    pub fn edges(&self, k: usize) -> (f64, f64) {
        match self.every {
            Some(e) => {
                let a = self.origin + e * k as f64;
                let end = if self.open_end { a + e } else { (a + e).min(self.hi) };
                (a.max(self.lo), end)
            }
            None => (self.lo, self.hi),
        }
    }
}

/// How each file is answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sorted {
    /// (row, bin): the row's moments are the bin's, whole.
    pub whole: Vec<(usize, usize)>,
    /// Rows a bin or window edge cuts through: read their records.
    pub edges: Vec<usize>,
}

/// Sort rows into those a bin holds whole, those cut by an edge, and the rest
/// (outside the window: not read at all).
pub fn sort_rows(b: &Binning, spans: &[Span]) -> Sorted {
    let mut out = Sorted::default();
    for (i, s) in spans.iter().enumerate() {
        if s.records == 0 || s.t_max < b.lo || s.t_min >= b.hi {
            continue;
        }
        match (b.bin(s.t_min), b.bin(s.t_max)) {
            (Some(x), Some(y)) if x == y => out.whole.push((i, x)),
            _ => out.edges.push(i),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(t_min: f64, t_max: f64) -> Span {
        Span { offset: 0, records: 1, t_min, t_max }
    }

    #[test]
    fn files_inside_a_bin_answer_whole_and_only_cut_ones_are_read() {
        // 15-minute files from 2024-01-01T00:00Z, 900 s each (last record at +899)
        let t0 = 1_704_067_200.0;
        let spans: Vec<Span> =
            (0..200).map(|i| span(t0 + 900.0 * i as f64, t0 + 900.0 * i as f64 + 899.0)).collect();
        let b = Binning::new(None, None, Some(DAY), &spans, true);
        assert_eq!((b.origin, b.bins), (t0, 3), "200 files span 2.08 days");
        let s = sort_rows(&b, &spans);
        assert_eq!((s.whole.len(), s.edges.len()), (200, 0), "no file crosses midnight");
        assert_eq!(s.whole[96], (96, 1));
        // a window from 00:35 to 01:05 cuts two files and holds one whole
        let b = Binning::new(Some(t0 + 2100.0), Some(t0 + 3900.0), None, &spans, true);
        let s = sort_rows(&b, &spans);
        assert_eq!((s.whole.clone(), s.edges.clone()), (vec![(3, 0)], vec![2, 4]));
        assert_eq!(b.edges(0), (t0 + 2100.0, t0 + 3900.0));
    }

    #[test]
    fn series_bins_start_at_midnight_and_cover_the_window() {
        let t0 = 1_704_067_200.0;
        let spans = [span(t0 + 3600.0, t0 + 7200.0)];
        let b = Binning::new(Some(t0 + 1800.0), Some(t0 + 3.0 * DAY), Some(DAY), &spans, true);
        assert_eq!((b.origin, b.bins), (t0, 3));
        assert_eq!(b.edges(0), (t0 + 1800.0, t0 + DAY), "the first bin starts at the window");
        assert_eq!(b.bin(t0 + DAY), Some(1));
        assert_eq!(b.bin(t0 + 3.0 * DAY), None, "half-open");
        assert_eq!(b.bin(f64::NAN), None);
        let hourly = Binning::new(None, None, Some(3600.0), &spans, true);
        assert_eq!(
            (hourly.origin, hourly.bins),
            (t0 + 3600.0, 2),
            "01:00, and 02:00 holds the last"
        );
        assert_eq!(Binning::new(None, None, Some(DAY), &[], true).bins, 0);
    }
}
