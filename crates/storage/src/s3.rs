//! Any S3-compatible server through aws-sdk-s3. Configured by the standard AWS variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`). With a
//! custom endpoint, path-style addressing is used and checksums are only sent when an
//! operation requires them: MinIO and other servers reject some newer checksum headers.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use penstock_config::S3Settings;

use crate::store::{ObjectMeta, ObjectReader, ObjectStore, StorageError, check_key};

pub struct S3Store {
    client: Client,
    bucket: String,
    /// Key prefix inside the bucket (empty or ending in `/`), stripped from keys.
    prefix: String,
}

impl S3Store {
    /// Builds a client from the settings (explicit values win over the SDK's chain).
    pub async fn new(settings: &S3Settings, bucket: String, prefix: String) -> S3Store {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "penstock configuration",
            ));
        }
        let shared = loader.load().await;
        let custom_endpoint = settings.endpoint_url.is_some();
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(custom_endpoint);
        if shared.region().is_none() {
            config = config.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        S3Store {
            client: Client::from_conf(config.build()),
            bucket,
            prefix,
        }
    }

    /// A store over an existing client (tests).
    pub fn with_client(client: Client, bucket: String, prefix: String) -> S3Store {
        S3Store { client, bucket, prefix }
    }

    fn full_key(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    key: &str,
    e: SdkError<E>,
) -> StorageError {
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => s.raw().status().is_server_error() || s.raw().status().as_u16() == 429,
        _ => false,
    };
    let status = match &e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        _ => None,
    };
    if status == Some(404) || e.code() == Some("NoSuchKey") {
        return StorageError::NotFound { key: key.into() };
    }
    if status == Some(412) || e.code() == Some("PreconditionFailed") {
        return StorageError::Failed {
            key: key.into(),
            message: "the object changed after it was discovered: S3 no longer has the ETag it was planned with \
                      (the read's If-Match was refused); the scanner will pick up the new version"
                .into(),
            transient: false,
        };
    }
    let message = match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("S3 error {code}: {msg}"),
        (Some(code), None) => format!("S3 error {code}"),
        _ => format!("S3 request failed: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
    };
    StorageError::Failed {
        key: key.into(),
        message,
        transient,
    }
}

fn trim_etag(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn id(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
        }
    }

    fn needs_settling(&self) -> bool {
        false
    }

    async fn list(&self) -> Result<Vec<ObjectMeta>, StorageError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(&self.id(), e))?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                let Some(key) = full.strip_prefix(&self.prefix) else {
                    continue;
                };
                if key.is_empty() || key.ends_with('/') {
                    continue;
                }
                out.push(ObjectMeta {
                    key: key.to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: object
                        .last_modified()
                        .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                    etag: object.e_tag().map(trim_etag),
                    change: None,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn version(&self, meta: &ObjectMeta) -> Result<String, StorageError> {
        if let Some(etag) = &meta.etag {
            return Ok(format!("etag:{etag}"));
        }
        // Some servers (s3s-fs among them) omit ETags from listings; HEAD has it.
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(&meta.key)?)
            .send()
            .await
            .map_err(|e| sdk_error(&meta.key, e))?;
        match head.e_tag() {
            Some(etag) => Ok(format!("etag:{}", trim_etag(etag))),
            None => Err(StorageError::Failed {
                key: meta.key.clone(),
                message: "the server returned no ETag, so versions cannot be told apart".into(),
                transient: false,
            }),
        }
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StorageError> {
        self.get(key, None).await
    }

    async fn read_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes, StorageError> {
        self.get_range(key, None, start, end).await
    }

    async fn open_version(&self, key: &str, version: &str) -> Result<ObjectReader, StorageError> {
        self.get(key, planned_etag(version)).await
    }

    async fn read_range_of(&self, key: &str, version: &str, start: u64, end: u64) -> Result<Bytes, StorageError> {
        self.get_range(key, planned_etag(version), start, end).await
    }
}

/// The ETag a version names (`etag:<ETag>`), as an `If-Match` condition.
fn planned_etag(version: &str) -> Option<String> {
    version.strip_prefix("etag:").map(|etag| format!("\"{etag}\""))
}

impl S3Store {
    /// GET of the whole object, only if it still has `if_match` as its ETag.
    async fn get(&self, key: &str, if_match: Option<String>) -> Result<ObjectReader, StorageError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| sdk_error(key, e))?;
        Ok(Box::new(object.body.into_async_read()))
    }

    /// Ranged GET of `[start, end)`, only if the object still has `if_match` as its ETag.
    async fn get_range(
        &self,
        key: &str,
        if_match: Option<String>,
        start: u64,
        end: u64,
    ) -> Result<Bytes, StorageError> {
        if end <= start {
            return Ok(Bytes::new());
        }
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key)?)
            .range(format!("bytes={start}-{}", end - 1))
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| sdk_error(key, e))?;
        let body = object.body.collect().await.map_err(|e| StorageError::Failed {
            key: key.into(),
            message: format!("reading the body failed: {e}"),
            transient: true,
        })?;
        let bytes = body.into_bytes();
        if bytes.len() as u64 != end - start {
            return Err(StorageError::Failed {
                key: key.into(),
                message: format!(
                    "asked for bytes {start}..{end} but got {} bytes: the object changed after it was discovered",
                    bytes.len()
                ),
                transient: false,
            });
        }
        Ok(bytes)
    }
}
