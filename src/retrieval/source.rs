//! Reading documents: Markdown, HTML and plain text, with metadata from YAML
//! front matter (Markdown and text) or a sidecar file `NAME.meta.yaml`.
//!
//! Recognised metadata keys: `title`, `url`, `updated` (a date or RFC 3339
//! time) and `acl` (a list of groups that may read the document; absent or
//! empty means every signed-in principal). Front matter may carry other keys,
//! but one that looks like an access list under another name (`groups`,
//! `access`, `roles`, …) is an error, so a typo can never publish a restricted
//! document. Sidecars accept only the recognised keys.
//!
//! HTML is converted to Markdown with `htmd` (headings kept), so every format
//! goes through the same heading-aware chunker.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::chunk::DocMeta;

/// Suffix of sidecar metadata files.
pub const SIDECAR_SUFFIX: &str = ".meta.yaml";

/// File extensions that are ingested.
pub const EXTENSIONS: [&str; 6] = ["md", "markdown", "txt", "text", "html", "htm"];

/// A document read from disk, ready to chunk.
#[derive(Debug, Clone)]
pub struct Document {
    /// SHA-256 (hex) of the file and its sidecar: unchanged means nothing to do.
    pub hash: String,
    /// Metadata.
    pub meta: DocMeta,
    /// Body as Markdown (front matter removed, HTML converted).
    pub markdown: String,
}

/// Why one document could not be read; ingestion reports it and keeps the
/// document's previous chunks.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{document}: {message}")]
pub struct DocError {
    /// The document's `source` path.
    pub document: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
struct FrontMatter {
    title: Option<String>,
    url: Option<String>,
    updated: Option<serde_yaml_ng::Value>,
    acl: Option<Vec<String>>,
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
}

/// Keys that would mean "access list" to a reader but are not `acl`.
const ACL_LOOKALIKES: [&str; 8] = [
    "acls",
    "groups",
    "access",
    "roles",
    "allowed_groups",
    "readers",
    "permissions",
    "visibility",
];

/// Every ingestible file under `roots` (files or directories), as
/// `(source, path)` sorted by source. Hidden entries, sidecars and symbolic
/// links found while walking are skipped (a link could loop or pull in files
/// from outside the corpus); a root given explicitly may be a link.
///
/// # Errors
/// A root that does not exist or cannot be listed; two files with one source.
pub fn discover(roots: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for root in roots {
        if root.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, root.clone()));
        } else if root.is_dir() {
            walk(root, root, &mut out)?;
        } else {
            return Err(format!("{} does not exist", root.display()));
        }
    }
    out.sort();
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "two documents would both be named {:?} ({} and {}); ingest them into separate indexes",
            w[0].0,
            w[0].1.display(),
            w[1].1.display()
        ));
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(SIDECAR_SUFFIX) || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if is_ingestible(&path) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Whether a file has an ingested extension.
pub fn is_ingestible(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The sidecar metadata path of a document.
pub fn sidecar_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// Largest document read, in bytes (bigger files are reported, not read).
pub const MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Reads one document and its metadata.
///
/// # Errors
/// [`DocError`] for unreadable or oversized files, invalid UTF-8, malformed
/// front matter or sidecars, and access-list keys under the wrong name.
pub fn read(source: &str, path: &Path) -> Result<Document, DocError> {
    let err = |message: String| DocError {
        document: source.to_owned(),
        message,
    };
    let fs_meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if fs_meta.len() > MAX_DOCUMENT_BYTES {
        return Err(err(format!(
            "{} bytes is more than the {MAX_DOCUMENT_BYTES}-byte limit",
            fs_meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let sidecar_path = sidecar_of(path);
    let sidecar = match std::fs::read(&sidecar_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(format!("cannot read its sidecar: {e}"))),
    };
    let mut hasher = Sha256::new();
    hasher.update(&bytes);
    if let Some(s) = &sidecar {
        hasher.update(b"\0sidecar\0");
        hasher.update(s);
    }
    let hash = hex::encode(hasher.finalize());
    let text = String::from_utf8(bytes).map_err(|_| err("is not valid UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);

    let is_html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let (front, body) = if is_html {
        (FrontMatter::default(), text.to_owned())
    } else {
        split_front_matter(text).map_err(err)?
    };
    let mut front = front;
    if let Some(bytes) = sidecar {
        let side: Sidecar = serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| err(format!("sidecar {SIDECAR_SUFFIX} is invalid: {e}")))?;
        front.title = side.title.or(front.title);
        front.url = side.url.or(front.url);
        front.updated = side.updated.or(front.updated);
        front.acl = side.acl.or(front.acl);
    }
    if let Some(bad) = front
        .other
        .keys()
        .find(|k| ACL_LOOKALIKES.contains(&k.to_ascii_lowercase().as_str()))
    {
        return Err(err(format!(
            "front matter key {bad:?} is not understood; access lists are written `acl: [group, …]`"
        )));
    }
    let (markdown, html_title) = if is_html {
        html_to_markdown(&body).map_err(err)?
    } else {
        (body, None)
    };
    if let Some(u) = &front.url
        && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(err(format!("url {u:?} is not an http(s) URL")));
    }
    let acl = front.acl.unwrap_or_default();
    if let Some(g) = acl.iter().find(|g| !valid_group(g)) {
        return Err(err(format!(
            "acl group {g:?} is not a group name (letters, digits, `_`, `-`, `.`, `:`)"
        )));
    }
    let updated = match front.updated {
        Some(v) => yaml_scalar(&v).ok_or_else(|| err("`updated` must be a date".into()))?,
        None => fs_meta
            .modified()
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
            .unwrap_or_default(),
    };
    Ok(Document {
        hash,
        meta: DocMeta {
            title: front.title.or(html_title).unwrap_or_default(),
            url: front.url,
            updated,
            acl,
        },
        markdown,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    title: Option<String>,
    url: Option<String>,
    updated: Option<serde_yaml_ng::Value>,
    acl: Option<Vec<String>>,
}

fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 128
        && g.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn yaml_scalar(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Splits `---\nYAML\n---\n` off the start of a document.
fn split_front_matter(text: &str) -> Result<(FrontMatter, String), String> {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok((FrontMatter::default(), text.to_owned()));
    };
    let end = rest
        .match_indices("\n---")
        .map(|(i, _)| i)
        .find(|&i| {
            let after = &rest[i + 4..];
            after.is_empty() || after.starts_with('\n') || after.starts_with("\r\n")
        })
        .ok_or("front matter starts with `---` but never ends")?;
    let yaml = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']).to_owned();
    let front: FrontMatter = if yaml.trim().is_empty() {
        FrontMatter::default()
    } else {
        serde_yaml_ng::from_str(yaml).map_err(|e| format!("front matter is invalid: {e}"))?
    };
    Ok((front, body))
}

/// HTML → Markdown, plus the `<title>`. Scripts and styles are dropped.
fn html_to_markdown(html: &str) -> Result<(String, Option<String>), String> {
    let title = regex::Regex::new(r"(?is)<title[^>]*>(.*?)</title>")
        .ok()
        .and_then(|re| re.captures(html))
        .map(|c| c[1].split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty());
    let converter = htmd::HtmlToMarkdown::builder()
        .skip_tags(vec!["script", "style", "head", "nav", "noscript", "svg"])
        .build();
    let md = converter
        .convert(html)
        .map_err(|e| format!("HTML could not be converted: {e}"))?;
    Ok((md, title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn front_matter_gives_title_acl_and_updated() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "f.md",
            "---\ntitle: Finance close\nacl: [finance, admin]\nupdated: 2026-03-01\ntags: [x]\n---\n# Ignored\nbody\n",
        );
        let d = read("f.md", &p).unwrap();
        assert_eq!(d.meta.title, "Finance close");
        assert_eq!(d.meta.acl, vec!["finance", "admin"]);
        assert_eq!(d.meta.updated, "2026-03-01");
        assert!(d.markdown.starts_with("# Ignored"));
    }

    #[test]
    fn a_sidecar_overrides_and_changes_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "page.html",
            "<html><head><title>Plans</title></head><body><h2>Tiers</h2><p>Gold and <b>silver</b>.</p><script>evil()</script></body></html>",
        );
        let before = read("page.html", &p).unwrap();
        assert_eq!(before.meta.title, "Plans");
        assert!(before.markdown.contains("## Tiers"), "{}", before.markdown);
        assert!(!before.markdown.contains("evil"));
        write(dir.path(), "page.html.meta.yaml", "acl: [sales]\n");
        let after = read("page.html", &p).unwrap();
        assert_eq!(after.meta.acl, vec!["sales"]);
        assert_ne!(before.hash, after.hash);
    }

    #[test]
    fn bad_metadata_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("a.md", "---\ngroups: [finance]\n---\nx"),
            ("b.md", "---\nacl: [finance\n---\nx"),
            ("c.md", "---\nacl: [finance]\nno end"),
            ("d.md", "---\nacl: [\"fin ance\"]\n---\nx"),
            ("u.md", "---\nurl: \"javascript:alert(1)\"\n---\nx"),
        ];
        for (name, text) in cases {
            let p = write(dir.path(), name, text);
            let e = read(name, &p).unwrap_err();
            assert_eq!(e.document, name);
        }
        let p = write(dir.path(), "e.md", "x");
        write(dir.path(), "e.md.meta.yaml", "acls: [x]\n");
        assert!(read("e.md", &p).unwrap_err().message.contains("sidecar"));
        let p = dir.path().join("bin.txt");
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read("bin.txt", &p).unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn discovery_skips_hidden_files_sidecars_and_other_types() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.md", "a");
        write(dir.path(), "a.md.meta.yaml", "acl: []");
        write(dir.path(), ".hidden.md", "h");
        write(dir.path(), "img.png", "p");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        write(&dir.path().join("sub"), "b.HTML", "<p>b</p>");
        let found: Vec<String> = discover(&[dir.path().to_owned()])
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(found, vec!["a.md", "sub/b.HTML"]);
        assert!(discover(&[dir.path().join("missing")]).is_err());
        // A link back up the tree neither loops nor is followed.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("sub/loop")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("host.txt")).unwrap();
        assert_eq!(discover(&[dir.path().to_owned()]).unwrap().len(), 2);
    }

    #[test]
    fn oversized_documents_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.txt");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_DOCUMENT_BYTES + 1).unwrap();
        assert!(read("big.txt", &p).unwrap_err().message.contains("limit"));
    }
}
