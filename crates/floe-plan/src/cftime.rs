//! CF time units (`<unit> since <epoch>`): parsing, absolute ordering, and exact
//! re-encoding between two units.

use chrono::{NaiveDate, NaiveDateTime};

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

/// Exact linear map `target = value * scale + offset` from one unit to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Reencode {
    pub scale: i64,
    pub offset: i64,
}

impl Reencode {
    pub const IDENTITY: Reencode = Reencode { scale: 1, offset: 0 };

    /// The map from `from` to `to`, if it is integral (exact).
    pub fn between(from: TimeUnits, to: TimeUnits) -> Option<Reencode> {
        if from.unit_ns % to.unit_ns != 0 {
            return None;
        }
        let delta = from.epoch_ns - to.epoch_ns;
        if delta % to.unit_ns != 0 {
            return None;
        }
        Some(Reencode {
            scale: i64::try_from(from.unit_ns / to.unit_ns).ok()?,
            offset: i64::try_from(delta / to.unit_ns).ok()?,
        })
    }

    pub fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }
}

/// Seconds since 1970 of a raw value in `units` (for ordering files by data time).
pub fn to_unix_seconds(value: f64, units: TimeUnits) -> f64 {
    (value * units.unit_ns as f64 + units.epoch_ns as f64) / 1e9
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn reencodes_exactly_or_not_at_all() {
        let day1 = parse_units("seconds since 2024-01-01").unwrap();
        let day2 = parse_units("seconds since 2024-01-02").unwrap();
        let r = Reencode::between(day2, day1).unwrap();
        assert_eq!(r, Reencode { scale: 1, offset: 86_400 });
        let min = parse_units("minutes since 2024-01-01").unwrap();
        assert_eq!(Reencode::between(min, day1).unwrap().scale, 60);
        // seconds cannot be written exactly as minutes
        assert!(Reencode::between(day1, min).is_none());
        let odd = parse_units("hours since 2024-01-01 00:00:30").unwrap();
        let hours = parse_units("hours since 2024-01-01").unwrap();
        assert!(Reencode::between(odd, hours).is_none());
        assert!(Reencode::between(day1, day1).unwrap().is_identity());
    }

    #[test]
    fn orders_across_units() {
        let a = parse_units("hours since 2024-01-01").unwrap();
        let b = parse_units("seconds since 2024-01-01 01:00:00").unwrap();
        assert_eq!(to_unix_seconds(1.0, a), to_unix_seconds(0.0, b));
    }
}

impl Reencode {
    /// Apply to little-endian values of `dtype` in place. Integers must not overflow;
    /// floats must map exactly (the inverse gives the original back), otherwise the
    /// file is refused rather than altered.
    pub fn apply(self, dtype: floe_source::DType, bytes: &mut [u8]) -> Result<(), String> {
        use floe_source::DType as D;
        if self.is_identity() {
            return Ok(());
        }
        macro_rules! ints {
            ($t:ty, $n:expr) => {{
                for c in bytes.chunks_exact_mut($n) {
                    let v = <$t>::from_le_bytes(c.try_into().map_err(|_| "short value")?);
                    let w = i128::from(v) * i128::from(self.scale) + i128::from(self.offset);
                    let w = <$t>::try_from(w)
                        .map_err(|_| format!("time value {v} overflows when re-encoded"))?;
                    c.copy_from_slice(&w.to_le_bytes());
                }
            }};
        }
        macro_rules! floats {
            ($t:ty, $n:expr) => {{
                for c in bytes.chunks_exact_mut($n) {
                    let v = <$t>::from_le_bytes(c.try_into().map_err(|_| "short value")?);
                    let (s, o) = (self.scale as $t, self.offset as $t);
                    let p = v * s;
                    let w = p + o;
                    // exact iff the product and the sum have no rounding error
                    // (error-free transforms: FMA for the product, Fast2Sum for the sum)
                    let exact = v.mul_add(s, -p) == 0.0 && w - p == o && w - o == p;
                    if v.is_finite() && !exact {
                        return Err(format!(
                            "time value {v} cannot be re-encoded exactly in the repository's units; \
                             write the file in the repository's time units or send it to another branch (--branch)"
                        ));
                    }
                    c.copy_from_slice(&w.to_le_bytes());
                }
            }};
        }
        match dtype {
            D::I8 => ints!(i8, 1),
            D::I16 => ints!(i16, 2),
            D::I32 => ints!(i32, 4),
            D::I64 => ints!(i64, 8),
            D::U8 => ints!(u8, 1),
            D::U16 => ints!(u16, 2),
            D::U32 => ints!(u32, 4),
            D::U64 => ints!(u64, 8),
            D::F32 => floats!(f32, 4),
            D::F64 => floats!(f64, 8),
            D::Bool | D::Str => return Err(format!("a {dtype} variable cannot carry CF time")),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod apply_tests {
    use super::*;
    use floe_source::DType;

    #[test]
    fn applies_to_ints_and_floats() {
        let r = Reencode { scale: 60, offset: 86_400 };
        let mut b: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        r.apply(DType::I64, &mut b).unwrap();
        let got: Vec<i64> =
            b.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(got, vec![86_400, 86_460, 86_520]);
        let mut f: Vec<u8> = [0.5f64, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        r.apply(DType::F64, &mut f).unwrap();
        assert_eq!(f64::from_le_bytes(f[..8].try_into().unwrap()), 86_430.0);
        // 1/3 minute is not a whole number of seconds in binary floating point
        let mut third: Vec<u8> = (1.0f64 / 3.0).to_le_bytes().to_vec();
        assert!(Reencode { scale: 60, offset: 0 }.apply(DType::F64, &mut third).is_err());
        let mut small: Vec<u8> = 100i8.to_le_bytes().to_vec();
        assert!(r.apply(DType::I8, &mut small).is_err());
    }
}
