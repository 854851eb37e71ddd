//! [`Plant`]: a plant as the API shows it (the plant index holds them, the handlers serve them).

use serde::Serialize;
use utoipa::ToSchema;

/// A plant: its generators' net generation summed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plant {
    /// Stable id (derived from year, state and plant name; the same after a reload).
    #[schema(example = 2201527168615947_i64)]
    pub id: i64,
    #[schema(example = 2023)]
    pub year: i32,
    #[schema(example = "TX")]
    pub state: String,
    #[schema(example = "W A Parish")]
    pub plant_name: String,
    /// Sum of the generators' known net generation, MWh; null when none is known.
    pub net_generation_mwh: Option<f64>,
    /// Number of generators.
    pub generators: i64,
}

impl From<penstock_db::read::PlantRow> for Plant {
    fn from(p: penstock_db::read::PlantRow) -> Plant {
        Plant {
            id: p.id,
            year: p.year,
            state: p.state,
            plant_name: p.plant_name,
            net_generation_mwh: p.net_generation_mwh,
            generators: p.generators,
        }
    }
}
