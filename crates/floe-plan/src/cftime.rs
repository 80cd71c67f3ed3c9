//! CF time units (`<unit> since <epoch>`): parsing, absolute ordering, and the
//! record-time encoding Floe writes.
//!
//! What "exact" means here is what xarray decodes: the repository's times must
//! decode to the very `datetime64[ns]` values that each source file decodes to.
//! xarray (pandas path, nanosecond resolution; the version pinned for the tests)
//! decodes an integer `v` as `epoch + v * unit`, and a float `v` as
//! `epoch + trunc(float64(v) * unit)`, where `unit` is the unit in nanoseconds.
//! The float rule is why re-encoding float times into other units goes wrong by
//! 1 ns: `v + offset` may be exact in float64 and still multiply and truncate to
//! another nanosecond. So Floe decodes each source value the way xarray does and
//! stores the result as integer counts: a float CF time creates its array as int64
//! nanoseconds since the first file's epoch, which holds every later value that
//! xarray decodes to `datetime64[ns]` within 292 years of that epoch.

use chrono::{NaiveDate, NaiveDateTime};
use floe_core::model::{DType, Scalar};

/// Parsed `units` of a CF time variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeUnits {
    /// Length of one unit, in nanoseconds.
    pub unit_ns: i128,
    /// The epoch, in nanoseconds since 1970-01-01 (proleptic Gregorian).
    pub epoch_ns: i128,
}

/// Calendars in which Floe does date arithmetic (all agree after 1582).
pub fn is_gregorian(calendar: Option<&str>) -> bool {
    matches!(
        calendar.map(str::to_ascii_lowercase).as_deref(),
        None | Some("standard") | Some("gregorian") | Some("proleptic_gregorian")
    )
}

fn unit_ns(word: &str) -> Option<i128> {
    Some(match word.to_ascii_lowercase().as_str() {
        "nanoseconds" | "nanosecond" | "ns" => 1,
        "microseconds" | "microsecond" | "us" => 1_000,
        "milliseconds" | "millisecond" | "ms" | "msec" => 1_000_000,
        "seconds" | "second" | "secs" | "sec" | "s" => 1_000_000_000,
        "minutes" | "minute" | "mins" | "min" => 60_000_000_000,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3_600_000_000_000,
        "days" | "day" | "d" => 86_400_000_000_000,
        _ => return None,
    })
}

/// Parse `"<unit> since <date>[ <time>][ <tz>]"`.
pub fn parse_units(units: &str) -> Option<TimeUnits> {
    let (unit, rest) = units.trim().split_once(" since ")?;
    let unit_ns = unit_ns(unit.trim())?;
    let rest = rest.trim().trim_end_matches("UTC").trim_end_matches('Z').trim();
    let rest = rest.strip_suffix("+00:00").or(rest.strip_suffix("+0000")).unwrap_or(rest).trim();
    let normalized = rest.replacen('T', " ", 1);
    let mut parts = normalized.split_whitespace();
    let date = parts.next()?;
    let time = parts.next().unwrap_or("00:00:00");
    if parts.next().is_some() {
        return None; // a time zone other than UTC
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()?;
    let dt = NaiveDateTime::new(date, time).and_utc();
    let epoch_ns =
        i128::from(dt.timestamp()) * 1_000_000_000 + i128::from(dt.timestamp_subsec_nanos());
    Some(TimeUnits { unit_ns, epoch_ns })
}

/// Seconds since 1970 of a raw value in `units` (for ordering files by data time).
pub fn to_unix_seconds(value: f64, units: TimeUnits) -> f64 {
    (value * units.unit_ns as f64 + units.epoch_ns as f64) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        let a = parse_units("seconds since 2024-01-01 00:00:00").unwrap();
        let b = parse_units("seconds since 2024-01-01T00:00:00Z").unwrap();
        let c = parse_units("seconds since 2024-01-01").unwrap();
        let d = parse_units("seconds since 2024-01-01 00:00:00 UTC").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(parse_units("days since 1970-01-01").unwrap().epoch_ns, 0);
        assert!(parse_units("furlongs since 2024-01-01").is_none());
        assert!(parse_units("seconds since 2024-01-01 00:00 +05:00").is_none());
        assert!(parse_units("kelvin").is_none());
    }

    #[test]
    fn orders_across_units() {
        let a = parse_units("hours since 2024-01-01").unwrap();
        let b = parse_units("seconds since 2024-01-01 01:00:00").unwrap();
        assert_eq!(to_unix_seconds(1.0, a), to_unix_seconds(0.0, b));
    }
}

/// xarray's missing time in int64 (`NaT`).
pub const NAT: i64 = i64::MIN;

/// How xarray decodes a float value in `units`: nanoseconds since 1970, or `None`
/// when it falls outside `datetime64[ns]` (xarray then decodes the array with cftime).
pub fn decode_float(v: f64, units: TimeUnits) -> Option<i64> {
    // numpy: float64 array * int64 scalar -> float64 product, then astype(int64)
    // truncates toward zero
    let product = v * units.unit_ns as f64;
    if !product.is_finite() || product.abs() >= 9.2e18 {
        return None;
    }
    let ns = units.epoch_ns + product.trunc() as i128;
    i64::try_from(ns).ok().filter(|&n| n != NAT)
}

/// How xarray decodes an integer value in `units` (exact).
pub fn decode_int(v: i128, units: TimeUnits) -> Option<i64> {
    let ns = units.epoch_ns.checked_add(v.checked_mul(units.unit_ns)?)?;
    i64::try_from(ns).ok().filter(|&n| n != NAT)
}

/// Nanoseconds since 1970 of a value as stored with `dtype`, decoded as xarray does.
pub fn decode(v: &Scalar, dtype: DType, units: TimeUnits) -> Option<i64> {
    match (dtype.is_float(), v) {
        (true, s) => decode_float(s.as_f64(), units),
        (false, Scalar::Int(i)) => decode_int(i128::from(*i), units),
        (false, Scalar::UInt(u)) => decode_int(i128::from(*u), units),
        (false, Scalar::Float(f)) => decode_int(*f as i128, units),
        (false, Scalar::Text(_)) => None,
    }
}

/// `units` as a CF string, e.g. `nanoseconds since 2024-05-01T12:00:00`.
pub fn format_units(unit: &str, epoch_ns: i128) -> Option<String> {
    let secs = i64::try_from(epoch_ns.div_euclid(1_000_000_000)).ok()?;
    let nanos = u32::try_from(epoch_ns.rem_euclid(1_000_000_000)).ok()?;
    let t = chrono::DateTime::from_timestamp(secs, nanos)?;
    let format = if nanos == 0 { "%Y-%m-%dT%H:%M:%S" } else { "%Y-%m-%dT%H:%M:%S%.f" };
    Some(format!("{unit} since {}", t.format(format)))
}

/// How the repository stores a record time: its units and element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TimeEncoding {
    #[serde(skip)]
    pub units: TimeUnits,
    pub dtype: DType,
}

impl TimeEncoding {
    /// The encoding Floe creates a float CF time's array with: int64 nanoseconds
    /// since the source's own epoch. `None` when that epoch is outside what
    /// `datetime64[ns]` can hold (then xarray decodes with cftime, and the
    /// source's own encoding is kept).
    pub fn for_new_array(source: TimeUnits) -> Option<TimeEncoding> {
        i64::try_from(source.epoch_ns).ok()?;
        Some(TimeEncoding {
            units: TimeUnits { unit_ns: 1, epoch_ns: source.epoch_ns },
            dtype: DType::I64,
        })
    }

    /// The stored value that xarray decodes to `ns`, if this encoding has one.
    pub fn encode(self, ns: i64) -> Option<Scalar> {
        let delta = i128::from(ns) - self.units.epoch_ns;
        match self.dtype {
            DType::F32 | DType::F64 => self.encode_float(ns, delta).map(Scalar::Float),
            DType::Bool | DType::Str => None,
            _ => {
                if delta % self.units.unit_ns != 0 {
                    return None;
                }
                let q = delta / self.units.unit_ns;
                fits(self.dtype, q).then(|| match i64::try_from(q) {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => Scalar::UInt(u64::try_from(q).unwrap_or(u64::MAX)),
                })
            }
        }
    }

    /// A float whose xarray decoding is exactly `ns`: the nearest quotient, or one
    /// of its neighbours (the product rounds, then truncates).
    fn encode_float(self, ns: i64, delta: i128) -> Option<f64> {
        let q = delta as f64 / self.units.unit_ns as f64;
        let mut candidates = vec![q];
        let (mut up, mut down) = (q, q);
        for _ in 0..4 {
            up = up.next_up();
            down = down.next_down();
            candidates.extend([up, down]);
        }
        candidates.into_iter().find_map(|c| {
            let c = if self.dtype == DType::F32 { f64::from(c as f32) } else { c };
            (decode_float(c, self.units) == Some(ns)).then_some(c)
        })
    }
}

fn fits(dtype: DType, q: i128) -> bool {
    let (lo, hi): (i128, i128) = match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        // NaT is not a time
        DType::I64 => (i128::from(i64::MIN) + 1, i64::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        DType::Bool | DType::Str | DType::F32 | DType::F64 => return false,
    };
    (lo..=hi).contains(&q)
}

/// From a source's time values to the repository's encoding, value by value, so
/// that each decodes (as xarray decodes) to what the source decodes to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimeMap {
    #[serde(skip)]
    pub from: TimeUnits,
    pub from_dtype: DType,
    /// Values that mark a missing time in the source (`_FillValue`, `missing_value`).
    pub missing: Vec<f64>,
    pub to: TimeEncoding,
    /// The repository's units, for messages.
    pub to_units: String,
}

impl TimeMap {
    /// One value, given as the source stores it.
    pub fn map_one(&self, v: &Scalar) -> Result<Scalar, String> {
        let x = v.as_f64();
        if x.is_nan() || self.missing.contains(&x) {
            return match self.to.dtype {
                DType::I64 => Ok(Scalar::Int(NAT)),
                DType::F32 | DType::F64 => Ok(Scalar::Float(f64::NAN)),
                other => Err(format!(
                    "a missing time cannot be stored in the repository's {other} times; send the file to another branch (--branch)"
                )),
            };
        }
        let ns = decode(v, self.from_dtype, self.from).ok_or_else(|| {
            format!("time value {x} is outside what xarray decodes to datetime64[ns]; check the file's time units")
        })?;
        self.to.encode(ns).ok_or_else(|| {
            format!(
                "time value {x} (at {}) cannot be held exactly by the repository's time encoding ({} `{}`, chosen when the repository was created); send the file to another branch (--branch) or a new repository",
                iso(ns),
                self.to.dtype,
                self.to_units
            )
        })
    }

    /// Little-endian values of the source type in, of the repository's type out.
    pub fn apply(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let size = self.from_dtype.size().ok_or("a text variable cannot carry CF time")?;
        let out_size = self.to.dtype.size().ok_or("text times are not written")?;
        let mut out = Vec::with_capacity(bytes.len() / size * out_size);
        for c in bytes.chunks_exact(size) {
            let v = self.from_dtype.element(c).ok_or("short time value")?;
            write_element(self.to.dtype, &self.map_one(&v)?, &mut out)?;
        }
        Ok(out)
    }
}

fn write_element(dtype: DType, v: &Scalar, out: &mut Vec<u8>) -> Result<(), String> {
    let int = || match v {
        Scalar::Int(i) => Ok(i128::from(*i)),
        Scalar::UInt(u) => Ok(i128::from(*u)),
        Scalar::Float(f) => Ok(*f as i128),
        Scalar::Text(_) => Err("text time".to_string()),
    };
    let range = |x: i128| format!("time value {x} does not fit the repository's {dtype}");
    macro_rules! put {
        ($t:ty) => {{
            let x = int()?;
            out.extend_from_slice(&<$t>::try_from(x).map_err(|_| range(x))?.to_le_bytes())
        }};
    }
    match dtype {
        DType::I8 => put!(i8),
        DType::I16 => put!(i16),
        DType::I32 => put!(i32),
        DType::I64 => put!(i64),
        DType::U8 | DType::Bool => put!(u8),
        DType::U16 => put!(u16),
        DType::U32 => put!(u32),
        DType::U64 => put!(u64),
        DType::F32 => out.extend_from_slice(&(v.as_f64() as f32).to_le_bytes()),
        DType::F64 => out.extend_from_slice(&v.as_f64().to_le_bytes()),
        DType::Str => return Err("text times are not written".into()),
    }
    Ok(())
}

/// A time for messages: `2024-05-01T12:00:00.123456789Z`.
pub fn iso(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod map_tests {
    use super::*;

    fn f64s(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn i64s(b: &[u8]) -> Vec<i64> {
        b.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
    }

    #[test]
    fn float_times_decode_the_way_xarray_decodes_them() {
        // checked against xarray.coding.times.decode_cf_datetime (2026.9): these
        // are the nanoseconds it gives, truncation included
        let u = parse_units("seconds since 2024-05-01 12:00:00").unwrap();
        let e = u.epoch_ns as i64;
        assert_eq!(decode_float(0.123456, u), Some(e + 123_456_000));
        // 1.000001 * 1e9 = 1000000999.9999999: truncated, not rounded
        assert_eq!(decode_float(1.000001, u), Some(e + 1_000_000_999));
        assert_eq!(decode_float(f64::NAN, u), None);
        assert_eq!(decode_int(3, u), Some(e + 3_000_000_000));
    }

    #[test]
    fn radar_volumes_with_their_own_units_map_to_the_same_nanoseconds() {
        // ten volumes, each `seconds since <volume start>` with microsecond ray times
        let first = parse_units("seconds since 2024-05-01 12:00:00").unwrap();
        let to = TimeEncoding::for_new_array(first).unwrap();
        let units = format_units("nanoseconds", to.units.epoch_ns).unwrap();
        assert_eq!(units, "nanoseconds since 2024-05-01T12:00:00");
        for vol in 0..10 {
            let since = format!("seconds since 2024-05-01 12:{:02}:07.25", vol * 5);
            let from = parse_units(&since).unwrap();
            let map = TimeMap {
                from,
                from_dtype: DType::F64,
                missing: vec![],
                to,
                to_units: units.clone(),
            };
            let rays: Vec<f64> = (0..360).map(|r| r as f64 * 0.000_731 + 0.1).collect();
            let out = i64s(&map.apply(&f64s(&rays)).unwrap());
            for (r, got) in rays.iter().zip(out) {
                let want = decode_float(*r, from).unwrap();
                assert_eq!(decode_int(got.into(), to.units), Some(want), "{since} {r}");
            }
        }
    }

    #[test]
    fn an_encoding_that_cannot_hold_a_value_says_so() {
        let minutes = parse_units("minutes since 2024-01-01").unwrap();
        let to = TimeEncoding { units: minutes, dtype: DType::I32 };
        let from = parse_units("seconds since 2024-01-01").unwrap();
        let map = TimeMap {
            from,
            from_dtype: DType::F64,
            missing: vec![-9999.0],
            to,
            to_units: "minutes since 2024-01-01".into(),
        };
        assert_eq!(map.map_one(&Scalar::Float(120.0)).unwrap(), Scalar::Int(2));
        let e = map.map_one(&Scalar::Float(30.0)).unwrap_err();
        assert!(e.contains("cannot be held exactly") && e.contains("--branch"), "{e}");
        assert!(map.map_one(&Scalar::Float(-9999.0)).is_err(), "int32 has no NaT");
        // a float encoding (repositories of earlier Floe versions): exact by xarray's rule
        let to = TimeEncoding { units: from, dtype: DType::F64 };
        let later = parse_units("seconds since 2024-01-02").unwrap();
        let map = TimeMap { from: later, to, ..map };
        let w = map.map_one(&Scalar::Float(0.123456)).unwrap();
        assert!(matches!(w, Scalar::Float(_)), "{w:?}");
        assert_eq!(decode_float(w.as_f64(), from), decode_float(0.123456, later));
        assert!(map.map_one(&Scalar::Float(f64::NAN)).unwrap().as_f64().is_nan());
    }

    #[test]
    fn missing_times_become_nat() {
        let u = parse_units("seconds since 2024-01-01").unwrap();
        let to = TimeEncoding::for_new_array(u).unwrap();
        let map = TimeMap {
            from: u,
            from_dtype: DType::F64,
            missing: vec![-9999.0],
            to,
            to_units: String::new(),
        };
        let out = i64s(&map.apply(&f64s(&[1.0, f64::NAN, -9999.0])).unwrap());
        assert_eq!(out, vec![1_000_000_000, NAT, NAT]);
    }
}
