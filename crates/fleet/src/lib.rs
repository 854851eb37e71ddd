//! The fleet: runs any subset of penstock's roles in one process ([`Fleet`]), each broker
//! role under a supervisor that reconnects with backoff ([`supervise`]), the api role, and
//! one health server (`/health`, `/ready`, `/metrics`) for all of them. This crate wires
//! the roles (`penstock-workers`) and the API (`penstock-api`) together; neither of those
//! knows the other.

mod fleet;
mod role;
mod supervise;

pub use fleet::Fleet;
pub use role::Role;
