//! [`Plant`]: a plant as the API shows it (the plant index holds them, the handlers serve them).

use serde::Serialize;
use utoipa::ToSchema;

/// A plant: its generators' net generation summed.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
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
