//! S3 bucket notifications (the JSON MinIO publishes to AMQP, and AWS sends to SQS/SNS):
//! which objects were created. Everything else in a notification is ignored.

use serde::Deserialize;

/// One object that was created or overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The object key, decoded (notifications URL-encode it, `+` for spaces).
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: Option<String>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Option<S3>,
}

#[derive(Deserialize)]
struct S3 {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
}

/// The created objects a notification reports (none for deletions and test events).
pub fn parse(body: &[u8]) -> Result<Vec<ObjectCreated>, String> {
    let notification: Notification = serde_json::from_slice(body)
        .map_err(|e| format!("not an S3 event notification (expected JSON with \"Records\"): {e}"))?;
    let mut out = Vec::new();
    for record in notification.records {
        // MinIO writes "s3:ObjectCreated:Put", AWS "ObjectCreated:Put".
        if !record
            .event_name
            .trim_start_matches("s3:")
            .starts_with("ObjectCreated:")
        {
            continue;
        }
        let Some(s3) = record.s3 else { continue };
        out.push(ObjectCreated {
            bucket: s3.bucket.name,
            key: decode_key(&s3.object.key)?,
            size: s3.object.size,
            etag: s3
                .object
                .etag
                .map(|e| e.trim_matches('"').to_string())
                .filter(|e| !e.is_empty()),
        });
    }
    Ok(out)
}

/// Form decoding: `+` is a space, `%XX` a byte (percent-encoding); the result must be UTF-8.
/// A `%` not followed by two hex digits is refused (percent-encoding would keep it as it is,
/// naming an object that does not exist).
fn decode_key(raw: &str) -> Result<String, String> {
    let malformed = raw.match_indices('%').any(|(i, _)| {
        !raw.get(i + 1..i + 3)
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if malformed {
        return Err(format!("object key {raw:?} has a bad %-escape"));
    }
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("object key {raw:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minio_put_notification_gives_the_decoded_key_size_and_etag() {
        let body = br#"{"EventName":"s3:ObjectCreated:Put","Key":"drops/egrid/generators/egrid+2023%2C+final.csv",
            "Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put",
            "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"drops","arn":"arn:aws:s3:::drops"},
            "object":{"key":"egrid%2Fgenerators%2Fegrid+2023%2C+final.csv","size":1048576,
            "eTag":"\"9b2cf535f27731c974343645a3985328\"","sequencer":"17A1"}}}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            vec![ObjectCreated {
                bucket: "drops".into(),
                key: "egrid/generators/egrid 2023, final.csv".into(),
                size: 1_048_576,
                etag: Some("9b2cf535f27731c974343645a3985328".into()),
            }]
        );
    }

    #[test]
    fn keys_are_form_decoded_and_malformed_escapes_refused() {
        assert_eq!(decode_key("egrid/my+file%2B1.csv").unwrap(), "egrid/my file+1.csv");
        assert_eq!(decode_key("caf%C3%A9%e2%82%ac.csv").unwrap(), "café€.csv");
        assert!(decode_key("a%zz.csv").unwrap_err().contains("bad %-escape"));
        assert!(decode_key("a%4").unwrap_err().contains("bad %-escape"));
        assert!(decode_key("a%ff.csv").unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn deletions_and_test_events_report_nothing() {
        let delete = br#"{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert_eq!(parse(delete).unwrap(), vec![]);
        let test = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
        assert_eq!(parse(test).unwrap(), vec![]);
    }

    #[test]
    fn aws_event_names_without_the_s3_prefix_count_too() {
        let body = br#"{"Records":[{"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"a/b.csv","size":3,"eTag":"abc-2"}}}]}"#;
        assert_eq!(parse(body).unwrap()[0].etag.as_deref(), Some("abc-2"));
    }

    #[test]
    fn garbage_is_refused_with_what_was_expected() {
        assert!(parse(b"hello").unwrap_err().contains("expected JSON with \"Records\""));
        let bad = br#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%ZZ"}}}]}"#;
        assert!(parse(bad).unwrap_err().contains("bad %-escape"));
    }
}
