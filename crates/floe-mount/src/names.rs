//! Names from a repository as they appear in the mount.
//!
//! A branch, tag, group or array name can never escape its folder: a name that is
//! empty, `.` or `..`, or that holds `/`, NUL or a control character, is shown
//! percent-escaped (`%2F` for `/`, `%2E%2E` for `..`, `%` alone for the empty name),
//! and `%` itself is always shown as `%25`, so two different names never show the
//! same. Names longer than the kernel's 255 bytes are left out (and logged).

use std::borrow::Cow;

/// The longest name the kernel takes.
pub const NAME_MAX: usize = 255;

fn needs_escape(c: char) -> bool {
    c == '/' || c == '%' || c.is_control()
}

/// The name shown for `name`, or `None` if it cannot be shown at all.
pub fn shown(name: &str) -> Option<Cow<'_, str>> {
    let out: Cow<'_, str> = if name.is_empty() {
        Cow::Borrowed("%")
    } else if name == "." {
        Cow::Borrowed("%2E")
    } else if name == ".." {
        Cow::Borrowed("%2E%2E")
    } else if name.chars().any(needs_escape) {
        let mut s = String::with_capacity(name.len() + 8);
        for c in name.chars() {
            if needs_escape(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("%{b:02X}"));
                }
            } else {
                s.push(c);
            }
        }
        Cow::Owned(s)
    } else {
        Cow::Borrowed(name)
    };
    if out.len() > NAME_MAX {
        tracing::warn!(name, "a name longer than {NAME_MAX} bytes is left out of the mount");
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_escape_their_folder() {
        for (name, want) in [
            ("main", "main"),
            ("", "%"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("a/../../etc", "a%2F..%2F..%2Fetc"),
            ("50%", "50%25"),
            ("nul\0x", "nul%00x"),
            ("tab\tnew\nline", "tab%09new%0Aline"),
            ("température", "température"),
        ] {
            let got = shown(name).unwrap();
            assert_eq!(got, want, "{name:?}");
            assert!(!got.contains('/') && got != "." && got != ".." && !got.is_empty());
            assert!(!got.chars().any(char::is_control));
        }
        assert!(shown(&"x".repeat(300)).is_none());
    }

    #[test]
    fn different_names_never_show_the_same() {
        let names = ["a/b", "a%2Fb", "%", "", "%25", ".", "%2E"];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            assert!(seen.insert(shown(n).unwrap().into_owned()), "{n:?} collides");
        }
    }
}
