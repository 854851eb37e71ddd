use penstock_broker::{MemoryQueue, WorkQueue};

use super::*;
use crate::stage::tests::{SETTINGS, run_until, settled};

#[tokio::test]
async fn a_malformed_s3_event_is_dead_lettered() {
    let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
    memory.ensure_external_queue("t.s3").await.unwrap();
    memory
        .publish("t.s3", b"{\"Records\": 5}", &Meta::new("e"))
        .await
        .unwrap();
    let stage = Arc::new(S3Events {
        ctx: Context::unreachable_database(store.path()).await,
        queue: Arc::new(memory.clone()),
        events_queue: "t.s3".into(),
    });
    run_until(stage, &memory, SETTINGS, settled("t.s3")).await.unwrap();
    let dead = memory.ready("t.errors");
    assert_eq!((dead.len(), dead[0].1.source_queue.as_deref()), (1, Some("t.s3")));
}
