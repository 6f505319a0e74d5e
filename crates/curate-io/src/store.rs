//! Object storage: `s3://bucket/key` locations on any S3-compatible server.
//!
//! A location is carried through the rest of the code as a path whose text starts with `s3://`
//! (so messages name the URL exactly as the user wrote it); [`ObjectUrl::from_path`] tells the
//! two kinds apart. Credentials, region and endpoint come from the standard AWS environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`, `AWS_ALLOW_HTTP=true` for a
//! plain-http endpoint), read by `object_store`'s `AmazonS3Builder::from_env`.
//!
//! Every object becomes visible whole or not at all: small files are one PUT, large ones a
//! multipart upload completed only after its last part. [`put_bytes`] with `create_only` is a
//! conditional PUT (`If-None-Match: *`): it never replaces an existing object, which is how
//! completion records stay committed once.
//!
//! One tokio runtime serves the whole process ([`block_on`]); the rest of curate stays
//! synchronous.

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use crate::atomic::AtomicFile;
use crate::error::{IoError, Location};

/// The URL scheme of object locations.
pub const SCHEME: &str = "s3://";

/// Files up to this size are uploaded with one PUT; larger ones as a multipart upload.
const SINGLE_PUT_BYTES: u64 = 32 << 20;
/// Part size of multipart uploads.
const PART_BYTES: usize = 16 << 20;

/// An object (or prefix) location: `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectUrl {
    /// Bucket name.
    pub bucket: String,
    /// Key (no leading or trailing `/`; empty for the bucket root).
    pub key: String,
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{SCHEME}{}", self.bucket)
        } else {
            write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
        }
    }
}

impl ObjectUrl {
    /// Parses `s3://bucket[/key]`; `None` when `s` is not an `s3://` URL at all.
    pub fn parse(s: &str) -> Option<Result<ObjectUrl, String>> {
        let rest = s.strip_prefix(SCHEME)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(format!("{s}: no bucket name after {SCHEME}")));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|seg| seg == "." || seg == "..") || key.contains("//") {
            return Some(Err(format!(
                "{s}: object keys may not contain empty, `.` or `..` segments"
            )));
        }
        Some(Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }))
    }

    /// The URL a path stands for, if its text starts with `s3://`.
    pub fn from_path(p: &Path) -> Option<Result<ObjectUrl, String>> {
        Self::parse(p.to_str()?)
    }

    /// The location as a path (how inputs and outputs are carried around).
    pub fn to_path(&self) -> PathBuf {
        PathBuf::from(self.to_string())
    }

    /// `self/rel`.
    pub fn join(&self, rel: &str) -> ObjectUrl {
        let rel = rel.trim_matches('/');
        let key = match (self.key.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.key.clone(),
            (false, false) => format!("{}/{rel}", self.key),
        };
        ObjectUrl {
            bucket: self.bucket.clone(),
            key,
        }
    }

    fn object_path(&self) -> ObjectPath {
        ObjectPath::from(self.key.as_str())
    }
}

/// Whether `p` is an object location (`s3://…`).
pub fn is_remote(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// The process-wide runtime all object-store calls run on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("curate-s3")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// Runs a future to completion on the shared runtime (from any non-runtime thread).
pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The client of a bucket (built once per bucket and process).
pub fn bucket(url: &ObjectUrl) -> Result<Arc<dyn ObjectStore>, IoError> {
    type Clients = Mutex<Vec<(String, Arc<dyn ObjectStore>)>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    let mut list = clients.lock().expect("client cache");
    if let Some((_, c)) = list.iter().find(|(b, _)| *b == url.bucket) {
        return Ok(c.clone());
    }
    let retry = RetryConfig {
        max_retries: 4,
        retry_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    // rustls's `ring` provider (the build leaves out aws-lc-rs); a no-op once installed
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&url.bucket)
        .with_retry(retry)
        .build()
        .map_err(|e| remote_error(url, Location::File, &e))?;
    let store: Arc<dyn ObjectStore> = Arc::new(store);
    list.push((url.bucket.clone(), store.clone()));
    Ok(store)
}

/// A located error from the object store, with a hint for the usual configuration mistakes.
pub fn remote_error(url: &ObjectUrl, at: Location, e: &object_store::Error) -> IoError {
    let mut message = match e {
        object_store::Error::NotFound { .. } => "no such object".to_string(),
        other => {
            let mut m = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let t = s.to_string();
                if !m.contains(&t) {
                    m.push_str(": ");
                    m.push_str(&t);
                }
                src = s.source();
            }
            m
        }
    };
    let lower = message.to_ascii_lowercase();
    if lower.contains("nosuchbucket") || lower.contains("bucket does not exist") {
        message = format!("bucket `{}` does not exist ({message})", url.bucket);
    } else if lower.contains("403")
        || lower.contains("accessdenied")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("credential")
    {
        message.push_str(
            "; hint: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for a non-AWS server)",
        );
    } else if lower.contains("connect") || lower.contains("dns") {
        message.push_str("; hint: check AWS_ENDPOINT_URL (and AWS_ALLOW_HTTP=true for http://)");
    }
    IoError::Remote {
        path: url.to_path(),
        at,
        message,
    }
}

/// Metadata of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Where it is.
    pub url: ObjectUrl,
    /// Size in bytes.
    pub size: u64,
    /// A token that changes whenever the content may have: xxh3-128 of ETag and modification
    /// time (never 0).
    pub version: u128,
}

fn info(url: ObjectUrl, m: &object_store::ObjectMeta) -> ObjectInfo {
    let tag = format!(
        "{}\0{}\0{}",
        m.e_tag.as_deref().unwrap_or(""),
        m.last_modified.timestamp_nanos_opt().unwrap_or(0),
        m.size
    );
    ObjectInfo {
        url,
        size: m.size,
        version: xxhash_rust::xxh3::xxh3_128(tag.as_bytes()).max(1),
    }
}

/// Metadata of an object; `None` if it does not exist.
pub fn head(url: &ObjectUrl) -> Result<Option<ObjectInfo>, IoError> {
    let store = bucket(url)?;
    match block_on(store.head(&url.object_path())) {
        Ok(m) => Ok(Some(info(url.clone(), &m))),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote_error(url, Location::File, &e)),
    }
}

/// Every object under the prefix `url` (`url/…`), sorted by key.
pub fn list(url: &ObjectUrl) -> Result<Vec<ObjectInfo>, IoError> {
    let store = bucket(url)?;
    let prefix = (!url.key.is_empty()).then(|| url.object_path());
    let metas: Vec<object_store::ObjectMeta> = block_on(store.list(prefix.as_ref()).try_collect())
        .map_err(|e| remote_error(url, Location::File, &e))?;
    let mut out: Vec<ObjectInfo> = metas
        .iter()
        .map(|m| {
            let u = ObjectUrl {
                bucket: url.bucket.clone(),
                key: m.location.to_string(),
            };
            info(u, m)
        })
        .collect();
    out.sort_by(|a, b| a.url.key.cmp(&b.url.key));
    Ok(out)
}

/// Expands `s3://bucket/prefix/*.parquet`-style patterns (`*`, `?`, `[…]`, `**`; `*` does not
/// cross `/`) by listing the prefix before the first wildcard. Returns matching object URLs.
pub fn glob(pattern: &ObjectUrl) -> Result<Vec<ObjectUrl>, String> {
    let key = &pattern.key;
    let first = key.find(['*', '?', '[']).unwrap_or(key.len());
    let dir = key[..first].rfind('/').map(|i| &key[..i]).unwrap_or("");
    let matcher = glob::Pattern::new(key)
        .map_err(|e| format!("pattern \"{pattern}\" is not a valid glob: {e}"))?;
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let base = ObjectUrl {
        bucket: pattern.bucket.clone(),
        key: dir.to_string(),
    };
    let all = list(&base).map_err(|e| e.to_string())?;
    Ok(all
        .into_iter()
        .filter(|o| matcher.matches_with(&o.url.key, opts))
        .map(|o| o.url)
        .collect())
}

/// The whole content of an object.
pub fn get_bytes(url: &ObjectUrl) -> Result<Option<Bytes>, IoError> {
    let store = bucket(url)?;
    let r = block_on(async {
        let g = store.get(&url.object_path()).await?;
        g.bytes().await
    });
    match r {
        Ok(b) => Ok(Some(b)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote_error(url, Location::File, &e)),
    }
}

/// Downloads an object to `dest` (atomically: a temp file beside it, renamed when complete).
/// Returns its size, or `None` if the object does not exist.
pub fn download(url: &ObjectUrl, dest: &Path) -> Result<Option<u64>, IoError> {
    let mut stream = match open_stream(url)? {
        Some(s) => s,
        None => return Ok(None),
    };
    let mut f = AtomicFile::create(dest)?;
    let mut size = 0u64;
    while let Some(chunk) = block_on(stream.next()) {
        let chunk = chunk.map_err(|e| remote_error(url, Location::File, &e))?;
        size += chunk.len() as u64;
        f.file()
            .write_all(&chunk)
            .map_err(|e| IoError::os(dest, e))?;
    }
    f.commit()?;
    Ok(Some(size))
}

fn open_stream(
    url: &ObjectUrl,
) -> Result<Option<BoxStream<'static, object_store::Result<Bytes>>>, IoError> {
    let store = bucket(url)?;
    match block_on(store.get(&url.object_path())) {
        Ok(g) => Ok(Some(g.into_stream())),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote_error(url, Location::File, &e)),
    }
}

/// Streams an object through xxh3-128 (the scheme of [`crate::hash::hash_file`]).
pub fn hash_object(url: &ObjectUrl) -> Result<(u64, u128), IoError> {
    let mut stream = open_stream(url)?.ok_or_else(|| IoError::Remote {
        path: url.to_path(),
        at: Location::File,
        message: "no such object".into(),
    })?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut size = 0u64;
    while let Some(chunk) = block_on(stream.next()) {
        let chunk = chunk.map_err(|e| remote_error(url, Location::File, &e))?;
        size += chunk.len() as u64;
        h.update(&chunk);
    }
    Ok((size, h.digest128()))
}

/// What a conditional PUT found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The object was written.
    Written,
    /// `create_only` and an object was already there: nothing was written.
    AlreadyExists,
}

/// Writes `bytes` as one object; with `create_only`, only if no object exists at `url`.
pub fn put_bytes(url: &ObjectUrl, bytes: Vec<u8>, create_only: bool) -> Result<Put, IoError> {
    let store = bucket(url)?;
    let opts = PutOptions {
        mode: if create_only {
            PutMode::Create
        } else {
            PutMode::Overwrite
        },
        ..Default::default()
    };
    match block_on(store.put_opts(&url.object_path(), PutPayload::from(bytes), opts)) {
        Ok(_) => Ok(Put::Written),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::AlreadyExists),
        // a PUT finds no object to miss: a 404 means the bucket is missing (the client drops
        // the server's NoSuchBucket code)
        Err(object_store::Error::NotFound { .. }) => Err(IoError::Remote {
            path: url.to_path(),
            at: Location::File,
            message: format!(
                "bucket `{}` does not exist (the PUT answered 404)",
                url.bucket
            ),
        }),
        Err(e) => Err(remote_error(url, Location::File, &e)),
    }
}

/// Uploads a finished local file: one PUT, or a multipart upload completed only after its last
/// part (so the object never exists half-written).
pub fn upload(src: &Path, url: &ObjectUrl) -> Result<(), IoError> {
    let size = std::fs::metadata(src)
        .map_err(|e| IoError::os(src, e))?
        .len();
    if size <= SINGLE_PUT_BYTES {
        let bytes = std::fs::read(src).map_err(|e| IoError::os(src, e))?;
        put_bytes(url, bytes, false)?;
        return Ok(());
    }
    let store = bucket(url)?;
    let mut f = std::fs::File::open(src).map_err(|e| IoError::os(src, e))?;
    block_on(async {
        let upload = store
            .put_multipart(&url.object_path())
            .await
            .map_err(|e| remote_error(url, Location::File, &e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| IoError::os(src, e))?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4)
                .await
                .map_err(|e| remote_error(url, Location::File, &e))?;
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .map_err(|e| remote_error(url, Location::File, &e))?;
        Ok(())
    })
}

/// Deletes one object (missing is fine).
pub fn delete(url: &ObjectUrl) -> Result<(), IoError> {
    let store = bucket(url)?;
    match block_on(store.delete(&url.object_path())) {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(remote_error(url, Location::File, &e)),
    }
}

/// Deletes every object under the prefix `url`; returns how many.
pub fn delete_prefix(url: &ObjectUrl) -> Result<usize, IoError> {
    let all = list(url)?;
    for o in &all {
        delete(&o.url)?;
    }
    Ok(all.len())
}

/// A blocking reader of an object's bytes, streamed (for JSONL inputs).
pub struct ObjectReader {
    url: ObjectUrl,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("url", &self.url)
            .finish()
    }
}

impl ObjectReader {
    /// Opens `url` for streaming.
    pub fn open(url: &ObjectUrl) -> Result<Self, IoError> {
        let stream = open_stream(url)?.ok_or_else(|| IoError::Remote {
            path: url.to_path(),
            at: Location::File,
            message: "no such object".into(),
        })?;
        Ok(Self {
            url: url.clone(),
            stream,
            buf: Bytes::new(),
        })
    }
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => {
                    // the located error rides inside, so callers can tell transport from data
                    return Err(std::io::Error::other(remote_error(
                        &self.url,
                        Location::File,
                        &e,
                    )));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A parquet file in object storage, read by byte range: the footer (one suffix-sized GET with a
/// 64 KiB prefetch), then the column chunks of each row group read. Memory is bounded as for a
/// local file: one row group's column chunks.
#[derive(Debug, Clone)]
pub struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
}

/// Opens `url` (of `size` bytes) for ranged parquet reads.
pub fn parquet_reader(url: &ObjectUrl, size: u64) -> Result<ObjectFile, IoError> {
    Ok(ObjectFile {
        store: bucket(url)?,
        path: url.object_path(),
        size,
    })
}

fn parquet_error(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

/// A read error of a parquet object: the object store's own errors (network, permissions, a
/// vanished object) as [`IoError::Remote`], anything else (bad bytes) as a format error.
pub fn parquet_read_error(
    url: &ObjectUrl,
    at: Location,
    e: parquet::errors::ParquetError,
) -> IoError {
    if let parquet::errors::ParquetError::External(inner) = &e
        && let Some(os) = inner.downcast_ref::<object_store::Error>()
    {
        return remote_error(url, at, os);
    }
    IoError::format(url.to_path(), at, e)
}

impl parquet::arrow::async_reader::AsyncFileReader for ObjectFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(parquet_error)
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(parquet_error)
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<
        'a,
        parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>,
    > {
        Box::pin(async move {
            let size = self.size;
            let m = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 << 10))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_join() {
        assert!(ObjectUrl::parse("data/x.parquet").is_none());
        let u = ObjectUrl::parse("s3://b/snap/").unwrap().unwrap();
        assert_eq!(u.bucket, "b");
        assert_eq!(u.key, "snap");
        assert_eq!(
            u.join("data/part-00000.parquet").to_string(),
            "s3://b/snap/data/part-00000.parquet"
        );
        let root = ObjectUrl::parse("s3://b").unwrap().unwrap();
        assert_eq!(root.key, "");
        assert_eq!(root.join("x").to_string(), "s3://b/x");
        assert!(ObjectUrl::parse("s3:///x").unwrap().is_err());
        assert!(ObjectUrl::parse("s3://b/a/../c").unwrap().is_err());
        assert!(is_remote(Path::new("s3://b/k")));
        assert!(!is_remote(Path::new("/s3/b")));
        assert_eq!(ObjectUrl::from_path(&u.to_path()).unwrap().unwrap(), u);
    }
}
