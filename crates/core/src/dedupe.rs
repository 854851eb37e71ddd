//! Dedupe inside one chunk: PostgreSQL refuses to update one row twice in one
//! `INSERT … ON CONFLICT`, and the file's later occurrence of a key is the one that stands,
//! so earlier occurrences are dropped here and reported as superseded.

use std::collections::HashMap;

use crate::rows::Row;

/// Keeps the last occurrence of each key (values at `key_indexes`), in file order. Returns
/// the kept rows and how many were superseded.
pub fn last_wins(rows: Vec<Row>, key_indexes: &[usize]) -> (Vec<Row>, u64) {
    let key = |row: &Row| key_indexes.iter().map(|&i| row.values[i].clone()).collect::<Vec<_>>();
    let mut last: HashMap<Vec<crate::Value>, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    if last.len() == rows.len() {
        return (rows, 0);
    }
    let superseded = (rows.len() - last.len()) as u64;
    let kept = rows
        .into_iter()
        .enumerate()
        .filter(|(i, row)| last.get(&key(row)) == Some(i))
        .map(|(_, row)| row)
        .collect();
    (kept, superseded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn row(line: u64, key: &str, v: i64) -> Row {
        Row {
            line,
            values: vec![Value::Text(key.into()), Value::Integer(v)],
        }
    }

    #[test]
    fn the_later_line_wins_and_the_earlier_is_counted_as_superseded() {
        let (kept, superseded) = last_wins(vec![row(3, "a", 1), row(4, "b", 2), row(5, "a", 3)], &[0]);
        assert_eq!(kept, vec![row(4, "b", 2), row(5, "a", 3)]);
        assert_eq!(superseded, 1);
    }

    #[test]
    fn rows_without_duplicates_are_untouched() {
        let rows = vec![row(3, "a", 1), row(4, "b", 1)];
        assert_eq!(last_wins(rows.clone(), &[0]), (rows, 0));
    }

    #[test]
    fn keys_compare_on_every_key_column() {
        let (kept, superseded) = last_wins(vec![row(3, "a", 1), row(4, "a", 2)], &[0, 1]);
        assert_eq!(kept.len(), 2);
        assert_eq!(superseded, 0);
    }

    #[test]
    fn three_occurrences_keep_only_the_last() {
        let (kept, superseded) = last_wins(vec![row(3, "a", 1), row(4, "a", 2), row(9, "a", 3)], &[0]);
        assert_eq!(kept, vec![row(9, "a", 3)]);
        assert_eq!(superseded, 2);
    }
}
