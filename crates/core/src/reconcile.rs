//! The reconciler's decisions: what to do about a file version that has made no progress
//! past the deadline (`reconcile_after`). The reconciler reads the ledger and the queues;
//! this module only decides.
//!
//! A file waits on one of two things: its file item (while `discovered` or `chunking`), or
//! the chunk items of its stored plan that are not in the ledger yet (while `loading`). When
//! those items may still be queued, the reconciler waits; otherwise they were lost (a purged
//! queue, a broker that dropped them) and it republishes exactly them — safe, because the
//! ledger makes a second delivery change nothing. After `max_recoveries` recoveries that did
//! not help, the file fails with a reason that says so.

/// What a stalled file is waiting for, as the ledger says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaiting {
    /// Its file item: the file is `discovered`, or `chunking` without a stored plan.
    FileItem,
    /// The chunk items of these planned chunks, which are not in the ledger.
    Chunks(Vec<u32>),
}

/// A file version that made no progress past the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub awaiting: Awaiting,
    /// Recoveries already made for it.
    pub recoveries: u32,
    /// Whether its items may still be on their way: the queue they wait in (or one of its
    /// retry queues) holds items, and no later work has overtaken them.
    pub may_be_queued: bool,
}

/// What the reconciler does about a stall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Its items may still be queued: look again at the next pass.
    Wait,
    /// Publish its file item again.
    RepublishFile,
    /// Publish these chunk items again (the missing ones, nothing else).
    RepublishChunks(Vec<u32>),
    /// Fail the file with this reason.
    GiveUp(String),
}

/// Decides what to do about `stall`, given how many recoveries a file gets.
pub fn decide(stall: &Stall, max_recoveries: u32) -> Recovery {
    if let Awaiting::Chunks(missing) = &stall.awaiting
        && missing.is_empty()
    {
        return Recovery::GiveUp(
            "every planned chunk is in the ledger, yet the file never finished; run `penstock replay` for it".into(),
        );
    }
    if stall.may_be_queued {
        return Recovery::Wait;
    }
    if stall.recoveries >= max_recoveries {
        let what = match &stall.awaiting {
            Awaiting::FileItem => "its file item was never chunked".to_string(),
            Awaiting::Chunks(missing) => format!("{} never committed", chunk_list(missing)),
        };
        return Recovery::GiveUp(format!(
            "no progress after {} recoveries by the reconciler: {what}; look for a work item that \
             stops its consumer (the `<prefix>.errors` queue, consumer logs), then `penstock replay` the file",
            stall.recoveries
        ));
    }
    match &stall.awaiting {
        Awaiting::FileItem => Recovery::RepublishFile,
        Awaiting::Chunks(missing) => Recovery::RepublishChunks(missing.clone()),
    }
}

/// "chunk 4" / "chunks 1, 2, 5 (3 of them)" / the first ten numbers and how many in all.
pub fn chunk_list(chunks: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut numbers: Vec<String> = chunks.iter().take(SHOWN).map(u32::to_string).collect();
    match chunks.len() {
        1 => format!("chunk {}", numbers[0]),
        n if n > SHOWN => {
            numbers.push("…".into());
            format!("chunks {} ({n} of them)", numbers.join(", "))
        }
        n => format!("chunks {} ({n} of them)", numbers.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stall(awaiting: Awaiting, recoveries: u32, may_be_queued: bool) -> Stall {
        Stall {
            awaiting,
            recoveries,
            may_be_queued,
        }
    }

    #[test]
    fn lost_chunk_items_are_republished_exactly() {
        let s = stall(Awaiting::Chunks(vec![2, 5]), 0, false);
        assert_eq!(decide(&s, 3), Recovery::RepublishChunks(vec![2, 5]));
    }

    #[test]
    fn a_lost_file_item_is_republished() {
        assert_eq!(decide(&stall(Awaiting::FileItem, 2, false), 3), Recovery::RepublishFile);
    }

    #[test]
    fn items_that_may_still_be_queued_are_waited_for_not_republished() {
        assert_eq!(decide(&stall(Awaiting::Chunks(vec![1]), 0, true), 3), Recovery::Wait);
        assert_eq!(decide(&stall(Awaiting::FileItem, 9, true), 3), Recovery::Wait);
    }

    #[test]
    fn a_file_that_recoveries_did_not_help_fails_naming_what_is_missing() {
        let Recovery::GiveUp(reason) = decide(&stall(Awaiting::Chunks(vec![3, 7]), 3, false), 3) else {
            panic!("expected to give up");
        };
        assert!(
            reason.starts_with(
                "no progress after 3 recoveries by the reconciler: chunks 3, 7 (2 of them) never committed"
            ),
            "{reason}"
        );
        let Recovery::GiveUp(reason) = decide(&stall(Awaiting::FileItem, 1, false), 1) else {
            panic!("expected to give up");
        };
        assert!(reason.contains("its file item was never chunked"), "{reason}");
    }

    #[test]
    fn a_loading_file_with_every_chunk_in_the_ledger_is_failed_not_republished() {
        let Recovery::GiveUp(reason) = decide(&stall(Awaiting::Chunks(vec![]), 0, true), 3) else {
            panic!("expected to give up");
        };
        assert!(reason.contains("every planned chunk is in the ledger"), "{reason}");
    }

    #[test]
    fn chunk_lists_stay_short() {
        assert_eq!(chunk_list(&[4]), "chunk 4");
        assert_eq!(chunk_list(&[1, 2]), "chunks 1, 2 (2 of them)");
        let many: Vec<u32> = (0..25).collect();
        assert_eq!(chunk_list(&many), "chunks 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, … (25 of them)");
    }
}
