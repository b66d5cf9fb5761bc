//! Embeds the web chat's built assets (`web/dist`, from `npm run build` in
//! `web/`) into the binary: writes `$OUT_DIR/web_assets.rs` with one
//! `(path, bytes)` pair per file. When `web/dist` is missing and `npm` is on
//! the PATH, builds it first (`npm ci`, `npm run build`; set
//! `STEWARD_SKIP_WEB_BUILD=1` to skip). Without a build, the list is empty,
//! a cargo warning says so, and steward serves its minimal built-in page.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Runs `npm ARGS` in `web`; whether it succeeded.
fn npm(web: &Path, args: &[&str]) -> bool {
    std::process::Command::new("npm")
        .args(args)
        .current_dir(web)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds `web/dist` when it is missing and npm is there.
fn build_web(web: &Path) {
    println!("cargo:rerun-if-env-changed=STEWARD_SKIP_WEB_BUILD");
    if web.join("dist").is_dir()
        || !web.join("package-lock.json").is_file()
        || std::env::var_os("STEWARD_SKIP_WEB_BUILD").is_some()
    {
        return;
    }
    let npm_found = std::process::Command::new("npm")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !npm_found {
        println!(
            "cargo:warning=npm not found: the web chat is not built; steward will serve its minimal page (install Node.js, or run `npm ci && npm run build` in web/)"
        );
        return;
    }
    let built = npm(web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        && npm(web, &["run", "build", "--silent"]);
    if !built {
        println!(
            "cargo:warning=building the web chat with npm failed: steward will serve its minimal page (run `npm ci && npm run build` in web/ to see why)"
        );
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    build_web(&root.join("web"));
    let dist = root.join("web/dist");
    // A path that does not exist would rerun this script (and rebuild the
    // crate) on every build: without a build, watch web/ for dist appearing.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=web/dist");
    } else {
        println!("cargo:rerun-if-changed=web");
    }
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Built web assets: (URL path, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        let rel = f.strip_prefix(&dist).expect("under dist");
        let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
        // Relative to the crate being compiled, not to this script's
        // checkout: a target directory shared by two checkouts may reuse
        // this output, and the other checkout may be gone.
        let rel_path = format!("/web/dist{url}");
        code.push_str(&format!(
            "    ({url:?}, include_bytes!(concat!(env!(\"CARGO_MANIFEST_DIR\"), {rel_path:?}))),\n"
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("web_assets.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
