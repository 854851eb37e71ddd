use super::*;
use std::time::Duration;

fn meta(size: u64, modified: SystemTime) -> ObjectMeta {
    ObjectMeta {
        key: "k".into(),
        size,
        modified: Some(modified),
        etag: None,
        change: Some("ino 7 ctime 100.000000000".into()),
    }
}

#[test]
fn a_rewrite_that_keeps_size_and_mtime_still_changes_the_stamp() {
    let now = SystemTime::now();
    let before = meta(5, now);
    let rewritten = ObjectMeta {
        change: Some("ino 7 ctime 101.000000000".into()),
        ..meta(5, now)
    };
    let renamed_in = ObjectMeta {
        change: Some("ino 8 ctime 100.000000000".into()),
        ..meta(5, now)
    };
    assert_eq!(stamp(&before), stamp(&meta(5, now)));
    assert_ne!(stamp(&before), stamp(&rewritten));
    assert_ne!(stamp(&before), stamp(&renamed_in));
}

#[test]
fn a_file_is_settled_when_two_listings_agree() {
    let now = SystemTime::now();
    assert!(settled(&meta(5, now), Some(&(5, Some(now))), Duration::from_secs(2)));
    assert!(!settled(&meta(6, now), Some(&(5, Some(now))), Duration::from_secs(2)));
    let later = now + Duration::from_millis(1);
    assert!(!settled(&meta(5, later), Some(&(5, Some(now))), Duration::from_secs(2)));
}

#[test]
fn a_first_seen_file_is_settled_only_if_untouched_for_an_interval() {
    let now = SystemTime::now();
    assert!(!settled(&meta(5, now), None, Duration::from_secs(2)));
    assert!(settled(
        &meta(5, now - Duration::from_secs(3)),
        None,
        Duration::from_secs(2)
    ));
    let unknown = ObjectMeta {
        modified: None,
        ..meta(5, now)
    };
    assert!(!settled(&unknown, None, Duration::from_secs(2)));
}
