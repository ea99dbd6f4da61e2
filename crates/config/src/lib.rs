//! Configuration: Portus's YAML key tree plus Portcullis's own keys, overridden by
//! environment variables.
//!
//! Sources, later wins: built-in defaults → YAML file → `PORTCULLIS_<KEY_PATH>` (or the
//! Portus alias `PORTUS_<KEY_PATH>`) → `<NAME>_FILE` (the value is read from that file,
//! for secrets). Unknown keys produce warnings; a value of the wrong type or outside its
//! allowed set stops startup with one line naming the key, the value and where it came
//! from. The environment is passed in as a map so tests control it.

mod load;
mod model;

pub use load::{ConfigError, Loaded, load, load_from_str, mask_url_password};
pub use model::*;
