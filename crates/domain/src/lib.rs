//! Pure domain logic of Portcullis: entities, naming rules, scope grammar, the
//! authorization policy and the names of the token signing choices. Nothing in this
//! crate performs I/O, reads the clock or draws random numbers; callers pass those in,
//! so every rule here is tested by tables.

pub mod error;
pub mod inventory;
pub mod model;
pub mod names;
pub mod policy;
pub mod scope;
pub mod signing;
pub mod time;

pub use error::{Error, Result};
