//! The worker's Wasm size by crate: the code of every function, read from the module's name
//! section, summed by the crate its name starts with (`core::…`, `serde_json::…`, the first
//! path inside `<…>` for trait impls), with the data segments apart. Drop glue and generic
//! code count for the crate that defines the function (`core::ptr::drop_in_place<…>` is
//! `core`'s), as twiggy counts them; the sum is the code section exactly.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::XtaskError;

/// Bytes per crate, largest first, plus `(data segments)` and `(other sections)`.
///
/// # Errors
///
/// When the file cannot be read or is not a Wasm module with a name section.
pub fn by_crate(file: &Path) -> Result<Vec<(String, u64)>, XtaskError> {
    let bytes = std::fs::read(file).map_err(|source| XtaskError::io("read", file, source))?;
    let bad = |problem: &str| XtaskError::Tool {
        tool: file.display().to_string(),
        problem: problem.to_owned(),
    };
    let module = Module::parse(&bytes).ok_or_else(|| bad("is not a Wasm module"))?;
    if module.names.is_empty() {
        return Err(bad("has no function names (name section)"));
    }
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    for (i, size) in module.bodies.iter().enumerate() {
        let index = module.imported_functions + i as u64;
        let name = module.names.get(&index).map_or("(unnamed)", String::as_str);
        *sizes.entry(crate_of(name)).or_default() += size;
    }
    let mut list: Vec<(String, u64)> = sizes.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.push(("(data segments)".into(), module.data));
    let counted: u64 = list.iter().map(|(_, n)| n).sum();
    list.push((
        "(other sections, headers)".into(),
        (bytes.len() as u64).saturating_sub(counted),
    ));
    Ok(list)
}

/// The crate a (demangled) function name belongs to.
fn crate_of(name: &str) -> String {
    let mut name = name.trim_start_matches(['<', '&', '*']);
    for prefix in ["impl ", "dyn ", "mut ", "const "] {
        name = name.trim_start_matches(prefix);
    }
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    match name.get(..end) {
        Some("") | None => "(other)".into(),
        Some(first) if name.get(end..end + 2) == Some("::") => first.to_owned(),
        Some(_) => "(unmangled: runtime, wasm-bindgen glue)".into(),
    }
}

struct Module {
    imported_functions: u64,
    bodies: Vec<u64>,
    data: u64,
    names: BTreeMap<u64, String>,
}

impl Module {
    fn parse(bytes: &[u8]) -> Option<Module> {
        if bytes.get(..4)? != b"\0asm" {
            return None;
        }
        let mut module = Module {
            imported_functions: 0,
            bodies: Vec::new(),
            data: 0,
            names: BTreeMap::new(),
        };
        let mut r = Reader { bytes, at: 8 };
        while r.at < bytes.len() {
            let id = r.byte()?;
            let size = r.len()?;
            let start = r.at;
            let end = start.checked_add(size)?;
            let mut s = Reader {
                bytes: bytes.get(..end)?,
                at: start,
            };
            match id {
                2 => module.imported_functions = imports(&mut s)?,
                10 => {
                    for _ in 0..s.leb()? {
                        let body = s.leb()?;
                        s.at += usize::try_from(body).ok()?;
                        module.bodies.push(body);
                    }
                }
                11 => module.data = size as u64,
                0 if s.name()? == "name" => names(&mut s, &mut module.names)?,
                _ => {}
            }
            r.at = end;
        }
        Some(module)
    }
}

/// The number of imported functions (they come first in the function index space).
fn imports(r: &mut Reader<'_>) -> Option<u64> {
    let mut functions = 0;
    for _ in 0..r.leb()? {
        r.name()?;
        r.name()?;
        match r.byte()? {
            0 => {
                r.leb()?;
                functions += 1;
            }
            1 => {
                r.byte()?;
                r.limits()?;
            }
            2 => r.limits()?,
            3 => {
                r.byte()?;
                r.byte()?;
            }
            _ => {
                r.byte()?;
                r.leb()?;
            }
        }
    }
    Some(functions)
}

/// The function names subsection (id 1) of a name section.
fn names(r: &mut Reader<'_>, out: &mut BTreeMap<u64, String>) -> Option<()> {
    while r.at < r.bytes.len() {
        let id = r.byte()?;
        let size = r.len()?;
        let end = r.at.checked_add(size)?;
        if id == 1 {
            for _ in 0..r.leb()? {
                let index = r.leb()?;
                out.insert(index, r.name()?.to_owned());
            }
        }
        r.at = end;
    }
    Some(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn leb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A LEB128 length.
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.leb()?).ok()
    }

    fn name(&mut self) -> Option<&'a str> {
        let len = self.len()?;
        let text = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        std::str::from_utf8(text).ok()
    }

    fn limits(&mut self) -> Option<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn names_are_counted_for_the_crate_they_start_with() {
        assert_eq!(crate_of("serde_json::de::from_str::h12"), "serde_json");
        assert_eq!(
            crate_of("<policy_core::Engine as core::fmt::Debug>::fmt::h1"),
            "policy_core"
        );
        assert_eq!(crate_of("core::ptr::drop_in_place<worker::Env>"), "core");
        assert_eq!(
            crate_of("dlmalloc"),
            "(unmangled: runtime, wasm-bindgen glue)"
        );
    }
}
