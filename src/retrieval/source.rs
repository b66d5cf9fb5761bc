//! Reading documents: Markdown, HTML and plain text, with metadata from YAML
//! front matter (Markdown and text) or a sidecar file beside the document
//! (`NAME.meta.yaml`, `.meta.yml` or `.meta.json`; it wins over front matter).
//!
//! Recognised metadata keys: `title`, `url` (http or https), `updated` (a
//! date or RFC 3339 time) and the access list `acl` — also accepted as
//! `groups`, `allowed_groups`, `roles`, `access` or `readers` — as a list of
//! groups or one comma-separated string; absent or empty means every
//! signed-in principal. Two access lists in one place are an error. Front
//! matter may carry other keys, but one that suggests access control without
//! being understood (`acls`, `permissions`, `visibility`, …) is an error, so a
//! typo can never publish a restricted document. Sidecars accept only the
//! recognised keys.
//!
//! HTML is converted to Markdown with `htmd` (headings kept), so every format
//! goes through the same heading-aware chunker.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::chunk::DocMeta;

/// Suffixes of sidecar metadata files, in the order they are looked for.
pub const SIDECAR_SUFFIXES: [&str; 3] = [".meta.yaml", ".meta.yml", ".meta.json"];

/// Whether a file name is a sidecar.
pub fn is_sidecar(name: &str) -> bool {
    SIDECAR_SUFFIXES.iter().any(|s| name.ends_with(s))
}

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

type Fields = std::collections::BTreeMap<String, serde_yaml_ng::Value>;

/// Names of the access list.
const ACL_KEYS: [&str; 6] = [
    "acl",
    "groups",
    "allowed_groups",
    "roles",
    "access",
    "readers",
];

/// Keys that suggest access control but are not understood.
const ACL_LOOKALIKES: [&str; 7] = [
    "acls",
    "permissions",
    "visibility",
    "access_list",
    "allowed_roles",
    "allowed_users",
    "private",
];

/// Metadata read from front matter or a sidecar.
#[derive(Debug, Default)]
struct Meta {
    title: Option<String>,
    url: Option<String>,
    updated: Option<String>,
    acl: Option<Vec<String>>,
}

fn text_value(key: &str, v: &serde_yaml_ng::Value) -> Result<String, String> {
    match v {
        serde_yaml_ng::Value::String(s) => Ok(s.clone()),
        serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!("`{key}` must be text")),
    }
}

fn group_list(key: &str, v: &serde_yaml_ng::Value) -> Result<Vec<String>, String> {
    let bad = || format!("`{key}` must be a list of group names or one comma-separated string");
    let raw: Vec<String> = match v {
        serde_yaml_ng::Value::Null => Vec::new(),
        serde_yaml_ng::Value::String(s) => s.split(',').map(|g| g.trim().to_owned()).collect(),
        serde_yaml_ng::Value::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(|g| g.trim().to_owned()).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    let groups: Vec<String> = raw.into_iter().filter(|g| !g.is_empty()).collect();
    if let Some(g) = groups.iter().find(|g| !valid_group(g)) {
        return Err(format!(
            "acl group {g:?} is not a group name (letters, digits, `_`, `-`, `.`, `:`)"
        ));
    }
    Ok(groups)
}

/// Reads the recognised keys of `fields`; with `strict`, any other key is an
/// error, else only keys that suggest access control are.
fn meta_from(fields: &Fields, strict: bool) -> Result<Meta, String> {
    let mut meta = Meta::default();
    let mut acl_key: Option<&str> = None;
    for (key, value) in fields {
        let lower = key.to_ascii_lowercase();
        match lower.as_str() {
            "title" => meta.title = Some(text_value(key, value)?),
            "url" => meta.url = Some(text_value(key, value)?),
            "updated" => meta.updated = Some(text_value(key, value)?),
            k if ACL_KEYS.contains(&k) => {
                if let Some(first) = acl_key {
                    return Err(format!(
                        "both `{first}` and `{key}` give an access list; keep one"
                    ));
                }
                acl_key = Some(key);
                meta.acl = Some(group_list(key, value)?);
            }
            k if ACL_LOOKALIKES.contains(&k) || strict => {
                return Err(format!(
                    "key {key:?} is not understood; access lists are written `acl: [group, …]`"
                ));
            }
            _ => {}
        }
    }
    Ok(meta)
}

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
        if name.starts_with('.') || is_sidecar(&name) || kind.is_symlink() {
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

/// The sidecar metadata file of a document, if it has one.
fn sidecar_of(path: &Path) -> Option<PathBuf> {
    SIDECAR_SUFFIXES.iter().find_map(|suffix| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        let p = PathBuf::from(s);
        p.is_file().then_some(p)
    })
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
    let sidecar = match sidecar_of(path) {
        Some(p) => {
            Some(std::fs::read(&p).map_err(|e| err(format!("cannot read its sidecar: {e}")))?)
        }
        None => None,
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
        (Meta::default(), text.to_owned())
    } else {
        let (fields, body) = split_front_matter(text).map_err(err)?;
        (
            meta_from(&fields, false).map_err(|m| err(format!("front matter: {m}")))?,
            body,
        )
    };
    let mut front = front;
    if let Some(bytes) = sidecar {
        let fields: Fields = serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| err(format!("sidecar is invalid: {e}")))?;
        let side = meta_from(&fields, true).map_err(|m| err(format!("sidecar: {m}")))?;
        front.title = side.title.or(front.title);
        front.url = side.url.or(front.url);
        front.updated = side.updated.or(front.updated);
        front.acl = side.acl.or(front.acl);
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
    let updated = match front.updated {
        Some(v) => v,
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

fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 128
        && g.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Splits `---\nYAML\n---\n` off the start of a document.
fn split_front_matter(text: &str) -> Result<(Fields, String), String> {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Ok((Fields::new(), text.to_owned()));
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
    let front: Fields = if yaml.trim().is_empty() {
        Fields::new()
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
    fn access_lists_have_common_names_and_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "g.md",
            "---\ngroups: finance, Admin\n---\nbody\n",
        );
        assert_eq!(read("g.md", &p).unwrap().meta.acl, vec!["finance", "Admin"]);
        let p = write(dir.path(), "r.txt", "---\nRoles:\n  - hr\n---\nbody\n");
        assert_eq!(read("r.txt", &p).unwrap().meta.acl, vec!["hr"]);
        let p = write(dir.path(), "j.md", "# J\n");
        write(
            dir.path(),
            "j.md.meta.json",
            r#"{"title": "Jay", "allowed_groups": ["ops"]}"#,
        );
        let d = read("j.md", &p).unwrap();
        assert_eq!(
            (d.meta.title.as_str(), d.meta.acl.clone()),
            ("Jay", vec!["ops".to_owned()])
        );
        let p = write(dir.path(), "e.md", "---\nacl: []\n---\nbody\n");
        assert!(read("e.md", &p).unwrap().meta.acl.is_empty());
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
            ("a.md", "---\nvisibility: private\n---\nx"),
            ("a2.md", "---\nacl: [a]\ngroups: [b]\n---\nx"),
            ("a3.md", "---\nacl: {finance: true}\n---\nx"),
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
        write(dir.path(), "a.md.meta.json", "{}");
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
