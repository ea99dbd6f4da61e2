pub mod images;
pub mod postgres;
pub mod registry;
pub mod server;
pub mod skopeo;
