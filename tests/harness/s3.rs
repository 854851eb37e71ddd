//! An S3-compatible server that runs inside the test process.
//!
//! The end-to-end tests need object storage that speaks real S3 (SigV4,
//! ListObjectsV2, HEAD, ranged GET) without Docker or an external binary.
//! [`S3Server::start`] serves a fresh temporary folder with `s3s-fs` over hyper
//! on `127.0.0.1:<free port>`; each bucket is a directory in that folder.
//! Dropping the [`S3Server`] stops the server and deletes the folder.
//!
//! Known quirks of `s3s-fs` 0.14: ListObjectsV2 entries carry no ETag (HEAD and
//! GET do), so tests must not rely on listings for object identity; and GET ignores
//! `If-Match`, which real S3 and MinIO answer with 412 when the ETag differs: the server adds
//! that check itself ([`Conditions`]).

use aws_sdk_s3::config::{Builder, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A running in-process S3 server; see the module docs.
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    task: JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server on 127.0.0.1:<random free port> serving a fresh temp
    /// folder, with `bucket` already created.
    pub async fn start(bucket: &str) -> S3Server {
        let root = tempfile::tempdir().expect("create S3 root dir");
        // s3s-fs stores a bucket as a directory directly under the root.
        std::fs::create_dir(root.path().join(bucket)).expect("create bucket dir");
        let (access_key, secret_key) = ("penstock-test-key", "penstock-test-secret");

        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs FileSystem");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        builder.set_access(Conditions {
            root: root.path().to_path_buf(),
        });
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind S3 port");
        let addr = listener.local_addr().expect("S3 local addr");
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            // Connections live in this set, so aborting the accept loop ends them too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                conns.spawn(async move {
                    let _ = conn.await;
                });
                while conns.try_join_next().is_some() {}
            }
        });

        S3Server {
            endpoint: format!("http://{addr}"),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: "us-east-1".to_owned(),
            task,
            _root: root,
        }
    }

    /// An aws-sdk-s3 client for it (path-style, checksums only when required,
    /// static credentials).
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let creds = Credentials::new(&self.access_key, &self.secret_key, None, None, "test");
        let config = Builder::new()
            .behavior_version_latest()
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(creds)
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// The standard AWS variables that point a penstock fleet at this server.
    pub fn env(&self) -> [(&'static str, &str); 4] {
        [
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_ACCESS_KEY_ID", &self.access_key),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_key),
            ("AWS_REGION", &self.region),
        ]
    }

    /// Uploads an object (PutObject); returns its ETag as the server quotes it.
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> String {
        self.client()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {bucket}/{key}: {e:?}"))
            .e_tag()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// GET's `If-Match`, as S3 does it: 412 PreconditionFailed unless the object's ETag (for
/// s3s-fs, the md5 of its bytes) is the one asked for. Everything else is s3s's default
/// access rule (signed requests only).
struct Conditions {
    root: std::path::PathBuf,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for Conditions {
    async fn get_object(&self, req: &mut s3s::S3Request<s3s::dto::GetObjectInput>) -> s3s::S3Result<()> {
        use md5::Digest;
        let Some(condition) = &req.input.if_match else {
            return Ok(());
        };
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(()); // s3s-fs answers NoSuchKey
        };
        let etag = hex::encode(md5::Md5::digest(&bytes));
        match condition {
            s3s::dto::ETagCondition::Any => Ok(()),
            s3s::dto::ETagCondition::ETag(wanted) if wanted.value() == etag => Ok(()),
            s3s::dto::ETagCondition::ETag(_) => Err(s3s::s3_error!(PreconditionFailed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::S3Server;

    #[tokio::test]
    async fn the_test_s3_server_serves_listing_head_and_ranged_gets() {
        let server = S3Server::start("data").await;
        server
            .put("data", "egrid/generators/x.csv", b"id,name\n1,a\n".to_vec())
            .await;
        server.put("data", "other.csv", b"z\n".to_vec()).await;
        let client = server.client().await;

        let listed = client
            .list_objects_v2()
            .bucket("data")
            .prefix("egrid/")
            .send()
            .await
            .expect("ListObjectsV2");
        let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, ["egrid/generators/x.csv"]);
        assert_eq!(listed.contents()[0].size(), Some(12));

        let head = client
            .head_object()
            .bucket("data")
            .key("egrid/generators/x.csv")
            .send()
            .await
            .expect("HeadObject");
        assert!(head.e_tag().is_some_and(|e| !e.is_empty()), "{head:?}");
        assert_eq!(head.content_length(), Some(12));

        let get = |range: Option<&str>| {
            client
                .get_object()
                .bucket("data")
                .key("egrid/generators/x.csv")
                .set_range(range.map(str::to_owned))
                .send()
        };
        let ranged = get(Some("bytes=2-5")).await.expect("ranged GetObject");
        let bytes = ranged.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], b",nam");
        let whole = get(None).await.expect("GetObject");
        let bytes = whole.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], b"id,name\n1,a\n");
    }
}
