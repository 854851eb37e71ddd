//! Sending rows with `COPY … FROM STDIN` in pieces.

/// Bytes of COPY data sent per message. sqlx's connection write buffer grows to the largest
/// message it has sent and never shrinks, so sending a whole chunk at once left every pooled
/// connection holding a chunk-sized buffer: a long load, which sooner or later copies on each
/// of them, ended ~16 MiB above a short one (README, "Benchmarks", (d)).
const COPY_PIECE: usize = 64 * 1024;

/// Runs one `COPY … FROM STDIN` with `data`; returns the rows it wrote.
pub(crate) async fn copy_in(tx: &mut sqlx::PgConnection, statement: &str, data: &[u8]) -> Result<u64, sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    for piece in data.chunks(COPY_PIECE) {
        if let Err(e) = copy.send(piece).await {
            let _ = copy.abort("send failed").await;
            return Err(e);
        }
    }
    copy.finish().await
}
