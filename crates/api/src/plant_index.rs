//! Every plant in memory, for free-text search and lookups by id.
//!
//! Plants are computed when read (the `egrid_plants` view groups `egrid_generators`), so a
//! name search in SQL aggregates every generator that matches: ~36 ms for a three-letter
//! query on the real 2023 file, too slow for a search box at 1,000 requests/s. Instead the
//! API reads the view once per data change (one query; ~30 ms for 12,606 plants) and answers
//! searches from this copy in microseconds. The copy belongs to the cache's generation: a
//! `NOTIFY penstock_data` (any chunk that changed rows) makes the next request build a new
//! one, and concurrent requests wait for that one build instead of each running their own.
//! While the cache cannot hear notifications, no copy is used (callers fall back to SQL).
//!
//! Text columns sort by the ranks PostgreSQL gives them (`rank() OVER (ORDER BY …)`), so
//! the order is the database collation's, exactly as `ORDER BY` in SQL would give it.

use std::collections::HashMap;
use std::sync::Arc;

use penstock_db::read::PlantSearch;
use penstock_db::{DbError, PgPool};
use tokio::sync::Mutex;

use crate::cache::Cache;
use crate::plant::Plant;

/// One plant with what searching and sorting need.
struct Entry {
    plant: Plant,
    lower_name: String,
    name_rank: i64,
    state_rank: i64,
}

/// The plants as of one cache generation.
pub struct Snapshot {
    generation: u64,
    entries: Vec<Entry>,
    by_id: HashMap<i64, usize>,
}

impl Snapshot {
    async fn load(pool: &PgPool, generation: u64) -> Result<Snapshot, DbError> {
        let entries: Vec<Entry> = penstock_db::read::ranked_plants(pool)
            .await?
            .into_iter()
            .map(|r| Entry {
                lower_name: r.plant.plant_name.to_lowercase(),
                plant: Plant::from(r.plant),
                name_rank: r.name_rank,
                state_rank: r.state_rank,
            })
            .collect();
        let by_id = entries.iter().enumerate().map(|(i, e)| (e.plant.id, i)).collect();
        Ok(Snapshot {
            generation,
            entries,
            by_id,
        })
    }

    pub fn plant(&self, id: i64) -> Option<&Plant> {
        self.by_id.get(&id).map(|&i| &self.entries[i].plant)
    }

    /// One page of the matching plants, sorted as `ORDER BY <sort> <order> NULLS LAST, id`
    /// would sort them, and how many match in all (what `search_plants` answers in SQL).
    pub fn search(&self, s: &PlantSearch<'_>) -> (Vec<Plant>, i64) {
        let q = s.name.map(str::to_lowercase);
        let (offset, limit) = (s.offset.max(0) as usize, s.limit.max(0) as usize);
        let mut hits: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| s.year.is_none_or(|y| e.plant.year == y))
            .filter(|e| s.state.is_none_or(|st| e.plant.state == st))
            .filter(|e| q.as_deref().is_none_or(|q| e.lower_name.contains(q)))
            .filter(|e| {
                s.min_mwh
                    .is_none_or(|m| e.plant.net_generation_mwh.is_some_and(|v| v >= m))
            })
            .filter(|e| {
                s.max_mwh
                    .is_none_or(|m| e.plant.net_generation_mwh.is_some_and(|v| v <= m))
            })
            .collect();
        let total = hits.len() as i64;
        // The sort value (None sorts last in either direction), then the id, ascending.
        let key = |e: &Entry| -> Option<f64> {
            match s.sort {
                "plant_name" => Some(e.name_rank as f64),
                "state" => Some(e.state_rank as f64),
                "year" => Some(f64::from(e.plant.year)),
                "generators" => Some(e.plant.generators as f64),
                _ => e.plant.net_generation_mwh,
            }
        };
        let order = |a: &&Entry, b: &&Entry| {
            let order = match (key(a), key(b)) {
                (Some(x), Some(y)) if s.descending => y.total_cmp(&x),
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            order.then(a.plant.id.cmp(&b.plant.id))
        };
        // Only the plants up to the end of the page need sorting.
        let end = offset.saturating_add(limit).min(hits.len());
        if end < hits.len() {
            hits.select_nth_unstable_by(end, order);
            hits.truncate(end);
        }
        hits.sort_by(order);
        let page = hits
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|e| e.plant.clone())
            .collect();
        (page, total)
    }
}

/// The current snapshot, rebuilt when the cache's generation moves on.
#[derive(Default)]
pub struct PlantIndex {
    current: Mutex<Option<Arc<Snapshot>>>,
}

impl PlantIndex {
    /// The snapshot for the cache's current generation (built now if need be), or None
    /// while the cache cannot hear invalidations.
    pub async fn get(&self, pool: &PgPool, cache: &Cache) -> Result<Option<Arc<Snapshot>>, DbError> {
        if !cache.is_listening() {
            return Ok(None);
        }
        let generation = cache.generation();
        let mut current = self.current.lock().await;
        if let Some(snapshot) = current.as_ref().filter(|s| s.generation == generation) {
            return Ok(Some(snapshot.clone()));
        }
        let snapshot = Arc::new(Snapshot::load(pool, generation).await?);
        *current = Some(snapshot.clone());
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, name: &str, state: &str, net: Option<f64>, name_rank: i64, state_rank: i64) -> Entry {
        Entry {
            plant: Plant {
                id,
                year: 2023,
                state: state.into(),
                plant_name: name.into(),
                net_generation_mwh: net,
                generators: 1,
            },
            lower_name: name.to_lowercase(),
            name_rank,
            state_rank,
        }
    }

    fn snapshot() -> Snapshot {
        let entries = vec![
            entry(5, "Solar One", "TX", Some(10.0), 2, 2),
            entry(3, "Big Solar", "AK", None, 1, 1),
            entry(4, "Wind Farm", "TX", Some(30.0), 3, 2),
            entry(1, "Solar Two", "TX", Some(10.0), 4, 2),
        ];
        let by_id = entries.iter().enumerate().map(|(i, e)| (e.plant.id, i)).collect();
        Snapshot {
            generation: 0,
            entries,
            by_id,
        }
    }

    fn search<'a>(name: Option<&'a str>, sort: &'a str, descending: bool) -> PlantSearch<'a> {
        PlantSearch {
            name,
            year: None,
            state: None,
            min_mwh: None,
            max_mwh: None,
            sort,
            descending,
            offset: 0,
            limit: 10,
        }
    }

    fn ids(plants: &[Plant]) -> Vec<i64> {
        plants.iter().map(|p| p.id).collect()
    }

    #[test]
    fn a_search_matches_anywhere_in_the_name_whatever_the_case() {
        let (page, total) = snapshot().search(&search(Some("SOLAR"), "net_generation_mwh", true));
        assert_eq!(total, 3);
        // Highest first, ties by id, unknown values last.
        assert_eq!(ids(&page), vec![1, 5, 3]);
    }

    #[test]
    fn unknown_values_sort_last_in_both_directions() {
        let (page, _) = snapshot().search(&search(None, "net_generation_mwh", false));
        assert_eq!(ids(&page), vec![1, 5, 4, 3]);
    }

    #[test]
    fn text_columns_sort_by_the_database_ranks() {
        let (page, _) = snapshot().search(&search(None, "plant_name", false));
        assert_eq!(ids(&page), vec![3, 5, 4, 1]);
        let (page, _) = snapshot().search(&search(None, "state", true));
        assert_eq!(ids(&page), vec![1, 4, 5, 3]);
    }

    #[test]
    fn filters_and_pages_narrow_the_result_but_not_the_total_of_the_filters() {
        let mut s = search(None, "net_generation_mwh", true);
        s.state = Some("TX");
        s.min_mwh = Some(10.0);
        s.max_mwh = Some(20.0);
        s.offset = 1;
        s.limit = 1;
        let (page, total) = snapshot().search(&s);
        assert_eq!(total, 2);
        assert_eq!(ids(&page), vec![5]);
    }

    #[test]
    fn a_plant_is_found_by_its_id() {
        let snapshot = snapshot();
        assert_eq!(snapshot.plant(4).map(|p| p.plant_name.as_str()), Some("Wind Farm"));
        assert!(snapshot.plant(99).is_none());
    }
}
