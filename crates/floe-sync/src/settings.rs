//! Settings periods: a folder may watch global attributes (firmware, calibration
//! date, operating mode, `--tag-on-change`); the first commit with a new value is
//! tagged `<attr>-<value>`, so the mount's `tags/` shows each period.

use std::collections::BTreeMap;

use floe_source::Dataset;

/// Watched attribute -> value.
pub type Values = BTreeMap<String, String>;

/// The file's values of the watched global attributes (those it has).
pub fn watched(ds: &Dataset, attrs: &[String]) -> Values {
    let Some(root) = ds.groups.iter().find(|g| g.path == "/") else { return Values::new() };
    attrs
        .iter()
        .filter_map(|a| {
            let v = root.attrs.get(a)?;
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((a.clone(), text))
        })
        .collect()
}

/// The watched values of `file` that differ from `current` (a value seen for the
/// first time starts a period too).
pub fn changes(current: &Values, file: &Values) -> Vec<(String, String)> {
    file.iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `<attr>-<value>` as a tag (and a folder of the mount's `tags/`) may hold it:
/// letters, digits, `.`, `_` and `-`; anything else becomes `_`.
pub fn tag_name(attr: &str, value: &str) -> String {
    let raw = format!("{attr}-{value}");
    let mut name: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(120)
        .collect();
    // (`.` and `..` are not folder names; a leading dot hides one)
    while name.starts_with('.') {
        name.replace_range(0..1, "_");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_becomes_a_tag_a_folder_may_hold() {
        assert_eq!(tag_name("firmware", "2.1.0"), "firmware-2.1.0");
        assert_eq!(tag_name("mode", "PPI / long range"), "mode-PPI___long_range");
        assert_eq!(
            tag_name("calibration_date", "2024-05-01T00:00:00Z"),
            "calibration_date-2024-05-01T00_00_00Z"
        );
        assert_eq!(tag_name(".x", "y"), "_x-y");
        assert!(tag_name("a", &"v".repeat(500)).len() <= 120);
    }

    #[test]
    fn changes_are_new_or_other_values() {
        let v =
            |p: &[(&str, &str)]| p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let now: Values = v(&[("firmware", "2.1")]);
        assert!(changes(&now, &v(&[("firmware", "2.1")])).is_empty());
        assert_eq!(
            changes(&now, &v(&[("firmware", "2.2")])),
            vec![("firmware".into(), "2.2".into())]
        );
        assert_eq!(changes(&Values::new(), &now), vec![("firmware".into(), "2.1".into())]);
        // an attribute a file lacks changes nothing
        assert!(changes(&now, &Values::new()).is_empty());
    }
}
