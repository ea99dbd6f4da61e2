//! Pure domain logic of Portcullis: entities, naming rules, scope grammar, the
//! authorization policy and the names of the token signing choices. Nothing in this
//! crate performs I/O, reads the clock or draws random numbers; callers pass those in,
//! so every rule here is tested by tables.

/// An enum stored and shown as fixed strings: `ALL`, `as_str` and `parse`.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}
pub(crate) use text_enum;

pub mod error;
pub mod inventory;
pub mod model;
pub mod names;
pub mod policy;
pub mod scope;
pub mod signing;
pub mod time;
pub mod webhooks;

pub use error::{Error, Result};
