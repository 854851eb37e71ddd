//! What the read API asks of the database: eGRID plants and their aggregates, the pipeline's
//! files and quarantined records. Each function returns plain row structs; the API maps them
//! to its response types (which carry the OpenAPI annotations). The API's alert queries live
//! with the rest of the `alerts` table's ([`crate::alerts_page`], [`crate::change_alert`]).

mod diff;
pub mod everywhere;
mod files;
mod plants;
mod summaries;

pub use diff::{Diff, DiffRow, diff};
pub use files::{DatasetFiles, QuarantinedRow, dataset_files, file_row, files_page, quarantined_page};
pub use plants::{
    GeneratorRow, PLANT_SORT_COLUMNS, PlantRow, PlantSearch, RankedPlant, generators, plant, ranked_plants,
    search_plants, top_plants,
};
pub use summaries::{ChartPoint, ChartSeries, Statistics, Summary, chart, states, statistics, years};
