use super::*;
use crate::plan::ChunkPlanner;
use crate::scan::RecordScanner;
use proptest::prelude::*;

fn egrid() -> DatasetSpec {
    DatasetSpec::from_toml(
        "egrid",
        include_str!("../../../../config/datasets/egrid_generators.toml"),
    )
    .unwrap()
}

proptest! {
    // 512 cases in `just test`; `just fuzz` raises it through PROPTEST_CASES.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    /// Whatever the bytes (in whatever blocks): scanning, header resolution, planning
    /// and coercion return results, never panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_chunker_or_the_loader(
        bytes in prop::collection::vec(prop_oneof![
            Just(b','), Just(b'"'), Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'('), Just(b')'),
            any::<u8>(), b'0'..=b'9',
        ], 0..400),
        block in 1usize..64,
    ) {
        let spec = egrid();
        let mut scanner = RecordScanner::new(&spec.csv, 0, 1);
        let mut planner = ChunkPlanner::new(16);
        let mut plans = Vec::new();
        let mut headers: Vec<Vec<String>> = Vec::new();
        let mut lines = Vec::new();
        let mut on = |r: crate::scan::Record<'_>| {
            if headers.len() < 2 {
                headers.push(r.fields().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
                lines.push(r.line);
            } else {
                plans.extend(planner.record(r.start, r.line));
            }
        };
        for piece in bytes.chunks(block) {
            scanner.feed(piece, &mut on);
        }
        let _ = scanner.unterminated_quote_line();
        scanner.finish(&mut on);
        let _ = crate::header::resolve(&spec, &headers, &lines);
        let header = HeaderMap { field_count: 6, columns: vec![1, 2, 3, 4, 5], new_columns: vec![] };
        plans.extend(planner.finish(bytes.len() as u64));
        for plan in plans {
            let _ = prepare_chunk(&bytes[plan.start as usize..plan.end as usize], &spec, &header, plan.first_line, 1);
        }
        let _ = prepare_chunk(&bytes, &spec, &header, 1, 1);
    }

    #[test]
    fn any_text_coerces_to_a_value_or_an_error(text in ".{0,40}") {
        for column in &egrid().columns {
            let _ = crate::coerce::coerce(&text, column, &[String::new()]);
        }
    }
}
