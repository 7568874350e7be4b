//! The builder web UI's built bundle (`crates/ui/dist/`, built by Vite from `crates/ui/web/`),
//! embedded in the binary so `botflow serve` serves it at `/ui/` on a machine without node.
//!
//! The bundle is committed: `cargo build` never runs node. [`SOURCE_HASH_FILE`] in `dist/` records
//! a hash of the sources it was built from ([`source_hash`] defines it once for the build script in
//! `web/scripts/` and for this crate's test, which fails when the bundle is stale).

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::OnceLock;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/dist");

/// The file in `dist/` that holds the hash of the sources the bundle was built from.
pub const SOURCE_HASH_FILE: &str = "source-hash.txt";

/// The command that rebuilds the committed bundle from the sources.
pub const REBUILD_COMMAND: &str =
    "npm --prefix crates/ui/web ci && npm --prefix crates/ui/web run build";

/// One file of the bundle, ready to serve.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The file's bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A strong ETag (quoted) derived from the bytes.
    pub etag: &'static str,
    /// Whether the name carries a content hash (Vite's `assets/name-HASH.ext`), so the file can
    /// be cached for a year; `index.html` must be revalidated instead.
    pub immutable: bool,
}

/// The bundle file at `path` (relative to `dist/`, e.g. `index.html` or `assets/index-abc.js`),
/// or `None`. The source hash file is not served.
pub fn asset(path: &str) -> Option<Asset> {
    if path == SOURCE_HASH_FILE {
        return None;
    }
    let file = DIST.get_file(path)?;
    let etag = etags().get(path)?.as_str();
    Some(Asset {
        bytes: file.contents(),
        content_type: content_type(path),
        etag,
        immutable: path.starts_with("assets/"),
    })
}

/// The page every UI route loads (`/ui/`).
pub fn index() -> Option<Asset> {
    asset("index.html")
}

/// The hash of the sources recorded in the committed bundle, if any.
pub fn recorded_source_hash() -> Option<&'static str> {
    DIST.get_file(SOURCE_HASH_FILE)?
        .contents_utf8()
        .map(str::trim)
}

fn etags() -> &'static BTreeMap<String, String> {
    static ETAGS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        let mut out = BTreeMap::new();
        collect_etags(&DIST, &mut out);
        out
    })
}

fn collect_etags(dir: &Dir<'static>, out: &mut BTreeMap<String, String>) {
    for file in dir.files() {
        let digest = Sha256::digest(file.contents());
        let path = file.path().to_string_lossy().replace('\\', "/");
        out.insert(path, format!("\"{}\"", &hex::encode(digest)[..32]));
    }
    for sub in dir.dirs() {
        collect_etags(sub, out);
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The hash of the UI sources: SHA-256 over, for each file in byte order of its path relative
/// to `web/` (with `/`), the line `PATH SHA256(CONTENT)\n`. The files are `index.html`,
/// `package.json`, `package-lock.json`, `tsconfig.json`, `vite.config.ts` and everything under
/// `src/`. `web/scripts/write-hash.mjs` computes the same for the bundle it writes.
/// `files` holds (relative path, content) pairs in any order.
pub fn source_hash(files: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    for (path, content) in sorted {
        hasher.update(format!("{path} {}\n", hex::encode(Sha256::digest(content))).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The top-level files of `web/` that are part of the source hash (besides `src/`).
pub const SOURCE_ROOT_FILES: &[&str] = &[
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_sources(web: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for name in SOURCE_ROOT_FILES {
            let bytes = std::fs::read(web.join(name))
                .unwrap_or_else(|err| panic!("cannot read crates/ui/web/{name}: {err}"));
            files.push(((*name).to_owned(), bytes));
        }
        let mut stack = vec![web.join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path
                        .strip_prefix(web)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.push((relative, std::fs::read(&path).unwrap()));
                }
            }
        }
        files
    }

    #[test]
    fn committed_bundle_matches_the_sources() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let expected = source_hash(&read_sources(&web));
        let recorded = recorded_source_hash().unwrap_or("(none)");
        assert_eq!(
            recorded, expected,
            "crates/ui/dist/ was not built from the current crates/ui/web/ sources; rebuild the \
             bundle and commit it: run `{REBUILD_COMMAND}`"
        );
    }

    #[test]
    fn source_hash_is_order_independent_and_content_sensitive() {
        let a = ("a.ts".to_owned(), b"one".to_vec());
        let b = ("b.ts".to_owned(), b"two".to_vec());
        let forward = source_hash(&[a.clone(), b.clone()]);
        assert_eq!(forward, source_hash(&[b.clone(), a.clone()]));
        assert_ne!(
            forward,
            source_hash(&[a, ("b.ts".to_owned(), b"two!".to_vec())])
        );
        // Known answer shared with web/scripts/write-hash.mjs: one empty file `x`.
        assert_eq!(
            source_hash(&[("x".to_owned(), Vec::new())]),
            hex::encode(Sha256::digest(
                b"x e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            ))
        );
    }

    #[test]
    fn index_and_the_assets_it_names_are_served_with_types_and_etags() {
        let index = index().expect("dist/index.html is embedded");
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert!(!index.immutable);
        let html = std::str::from_utf8(index.bytes).unwrap();
        let mut named = 0;
        for part in html.split("\"/ui/").skip(1) {
            let path = part.split('"').next().unwrap();
            let served =
                asset(path).unwrap_or_else(|| panic!("index.html names {path}, not embedded"));
            assert!(served.immutable, "{path}");
            assert!(served.etag.starts_with('"') && served.etag.len() == 34);
            named += 1;
        }
        assert!(
            named >= 2,
            "index.html names a script and a stylesheet: {html}"
        );
        assert!(asset(SOURCE_HASH_FILE).is_none());
        assert!(asset("nope.js").is_none());
    }
}
