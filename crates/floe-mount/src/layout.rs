//! Where an array's chunks live under its folder: the chunk key encoding of its
//! `zarr.json`, exactly as a Zarr reader computes keys.

use serde_json::Value;

/// A Zarr v3 chunk key encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEncoding {
    /// `c/0/1` (or `c.0.1`): the v3 default.
    Default(char),
    /// `0.1` (or `0/1`): the v2-compatible encoding.
    V2(char),
}

/// The chunk layout of one array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub encoding: KeyEncoding,
    pub ndim: usize,
}

impl Layout {
    /// Read the layout from an array's `zarr.json`.
    pub fn from_zarr_json(bytes: &[u8]) -> Result<Layout, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("zarr.json: {e}"))?;
        let ndim = v
            .get("shape")
            .and_then(Value::as_array)
            .map(Vec::len)
            .ok_or("zarr.json of an array has no shape")?;
        let enc = v.get("chunk_key_encoding");
        let name = enc.and_then(|e| e.get("name")).and_then(Value::as_str).unwrap_or("default");
        let sep = enc
            .and_then(|e| e.get("configuration"))
            .and_then(|c| c.get("separator"))
            .and_then(Value::as_str);
        let encoding = match (name, sep) {
            ("default", None | Some("/")) => KeyEncoding::Default('/'),
            ("default", Some(".")) => KeyEncoding::Default('.'),
            ("v2", None | Some(".")) => KeyEncoding::V2('.'),
            ("v2", Some("/")) => KeyEncoding::V2('/'),
            (n, s) => return Err(format!("unsupported chunk key encoding {n} {s:?}")),
        };
        Ok(Layout { encoding, ndim })
    }

    /// The path components of a chunk's key under the array's folder.
    pub fn key(&self, coords: &[u32]) -> Vec<String> {
        let parts = coords.iter().map(u32::to_string);
        match self.encoding {
            KeyEncoding::Default('/') => std::iter::once("c".to_string()).chain(parts).collect(),
            KeyEncoding::Default(sep) => {
                let mut s = String::from("c");
                for p in parts {
                    s.push(sep);
                    s.push_str(&p);
                }
                vec![s]
            }
            KeyEncoding::V2(_) if coords.is_empty() => vec!["0".to_string()],
            KeyEncoding::V2('/') => parts.collect(),
            KeyEncoding::V2(sep) => vec![parts.collect::<Vec<_>>().join(&sep.to_string())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(enc: &str, ndim: usize) -> Layout {
        let shape = vec![4; ndim];
        let doc = format!(r#"{{"shape":{shape:?},"chunk_key_encoding":{enc}}}"#);
        Layout::from_zarr_json(doc.as_bytes()).unwrap()
    }

    #[test]
    fn keys_follow_the_zarr_v3_encodings() {
        let d = layout(r#"{"name":"default","configuration":{"separator":"/"}}"#, 3);
        assert_eq!(d.key(&[0, 1, 2]), ["c", "0", "1", "2"]);
        let dot = layout(r#"{"name":"default","configuration":{"separator":"."}}"#, 2);
        assert_eq!(dot.key(&[3, 4]), ["c.3.4"]);
        let v2 = layout(r#"{"name":"v2","configuration":{"separator":"."}}"#, 2);
        assert_eq!(v2.key(&[3, 4]), ["3.4"]);
        let v2s = layout(r#"{"name":"v2","configuration":{"separator":"/"}}"#, 2);
        assert_eq!(v2s.key(&[3, 4]), ["3", "4"]);
        let scalar = layout(r#"{"name":"default"}"#, 0);
        assert_eq!(scalar.key(&[]), ["c"]);
        assert_eq!(v2.key(&[]), ["0"]);
    }

    #[test]
    fn an_unknown_encoding_is_refused() {
        let e = Layout::from_zarr_json(br#"{"shape":[1],"chunk_key_encoding":{"name":"x"}}"#);
        assert!(e.unwrap_err().contains("unsupported"));
    }
}
